export * from './define.js';
// Types only: the profile store (conf) is loaded by the commands that read it, not by `--help`.
export type { LoadOptions, ProfileValues, SettingsSource } from './profiles.js';
export * from './registry.js';
export * from './resolve.js';
export * from './sources.js';
export * from './limits.js';
export * from './stages.js';
export * from './export-csv.js';
export * from './probe.js';
export * from './presets.js';
export * from './kafka.js';
