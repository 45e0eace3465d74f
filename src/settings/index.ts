export * from './define.js';
export * from './profiles.js';
export * from './registry.js';
export * from './resolve.js';
export * from './sources.js';
export * from './stages.js';
export * from './export-csv.js';
