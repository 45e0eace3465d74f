import { UsageError } from '../errors.js';
import { openProfileStore, type ProfileValues } from '../settings.js';

const SECRET_KEY = /token|password|passwd|secret|api-?key/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Flag names (kebab-case, as typed on the command line) become the camelCase keys settings use. */
export function settingKey(name: string): string {
  const bare = name.replace(/^--/, '');
  if (!/^[a-zA-Z][a-zA-Z0-9-]*$/.test(bare)) throw new UsageError(`"${name}" is not a setting name`);
  return bare.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export interface ConfigStoreOptions {
  /** Directory of the profiles file (tests, or SYNCCTL_CONFIG_DIR). */
  cwd?: string;
}

export interface ProfileListing {
  path: string;
  profiles: Record<string, ProfileValues>;
}

/** Lists profiles with secret values masked: `config list` output may end up in tickets and logs. */
export function listProfiles(options: ConfigStoreOptions = {}): ProfileListing {
  const store = openProfileStore(options.cwd);
  const profiles: Record<string, ProfileValues> = {};
  for (const [name, values] of Object.entries(store.store)) {
    profiles[name] = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, isSecretKey(k) ? '***' : v]),
    ) as ProfileValues;
  }
  return { path: store.path, profiles };
}

export function setProfileValue(
  profile: string,
  name: string,
  value: string,
  options: ConfigStoreOptions = {},
) {
  const store = openProfileStore(options.cwd);
  const key = settingKey(name);
  store.set(profile, { ...(store.get(profile) ?? {}), [key]: value });
  return { profile, key, path: store.path };
}

export function getProfileValue(profile: string, name: string, options: ConfigStoreOptions = {}) {
  const store = openProfileStore(options.cwd);
  const key = settingKey(name);
  return { profile, key, value: store.get(profile)?.[key] };
}

export function unsetProfileValue(profile: string, name: string, options: ConfigStoreOptions = {}) {
  const store = openProfileStore(options.cwd);
  const key = settingKey(name);
  const values = { ...(store.get(profile) ?? {}) };
  const existed = key in values;
  delete values[key];
  if (Object.keys(values).length === 0) store.delete(profile);
  else store.set(profile, values);
  return { profile, key, removed: existed };
}
