import Conf from 'conf';
import { ConfigError } from './errors.js';

/** Everything a profile may hold; each key is also a flag and a SYNCCTL_<KEY> variable. */
export type ProfileValues = Record<string, string | number | boolean>;

export interface SettingsSource {
  env: NodeJS.ProcessEnv;
  profile: ProfileValues;
  profileName: string;
}

export function envName(key: string): string {
  return `SYNCCTL_${key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toUpperCase()}`;
}

export function openProfileStore(cwd?: string): Conf<Record<string, ProfileValues>> {
  return new Conf<Record<string, ProfileValues>>({
    projectName: 'syncctl',
    projectSuffix: '',
    configName: 'profiles',
    configFileMode: 0o600,
    ...(cwd ? { cwd } : {}),
  });
}

export function loadSettings(
  profileName: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  requireExisting = true,
): SettingsSource {
  const name = profileName ?? env.SYNCCTL_PROFILE ?? 'default';
  let profile: ProfileValues = {};
  try {
    const store = openProfileStore(env.SYNCCTL_CONFIG_DIR);
    profile = store.get(name) ?? {};
    if (requireExisting && profileName !== undefined && !store.has(name)) {
      throw new ConfigError(`profile "${name}" does not exist`, {
        hint: `create it with \`syncctl --profile ${name} config set KEY VALUE\``,
      });
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read the config profiles: ${(err as Error).message}`, { cause: err });
  }
  return { env, profile, profileName: name };
}

/** flags > SYNCCTL_* environment > profile > default. */
export function pick<T extends string | number | boolean>(
  source: SettingsSource,
  key: string,
  flag: T | undefined,
  fallback: T,
): T;
export function pick<T extends string | number | boolean>(
  source: SettingsSource,
  key: string,
  flag: T | undefined,
): T | undefined;
export function pick<T extends string | number | boolean>(
  source: SettingsSource,
  key: string,
  flag: T | undefined,
  fallback?: T,
): T | undefined {
  if (flag !== undefined) return flag;
  const fromEnv = source.env[envName(key)];
  const sample = fallback;
  if (fromEnv !== undefined && fromEnv !== '') return coerce(fromEnv, sample, key) as T;
  const fromProfile = source.profile[key];
  if (fromProfile !== undefined) return coerce(String(fromProfile), sample, key) as T;
  return fallback;
}

function coerce(raw: string, sample: unknown, key: string): string | number | boolean {
  if (typeof sample === 'number') {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new ConfigError(`${envName(key)} / ${key} must be a number, got "${raw}"`);
    return n;
  }
  if (typeof sample === 'boolean') return /^(1|true|yes|on)$/i.test(raw);
  return raw;
}
