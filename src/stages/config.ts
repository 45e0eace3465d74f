import { UsageError } from '../errors.js';
import { ALL_SETTINGS, checkValue, isSecretKey, keyOfFlag, type ProfileValues } from '../settings/index.js';
import { openProfileStore } from '../settings/profiles.js';

export interface ConfigStoreOptions {
  /** Directory of the profiles file (tests, or SYNCCTL_CONFIG_DIR). */
  cwd?: string;
}

export interface ProfileListing {
  path: string;
  profiles: Record<string, ProfileValues>;
}

/** Flag names (as typed: crm-url or --crm-url) and profile keys (crmUrl) name the same setting. */
function knownKey(name: string): string {
  const key = keyOfFlag(name);
  if (!ALL_SETTINGS.has(key)) {
    throw new UsageError(`"${name}" is not a setting`, {
      hint: 'every flag of every command is one, e.g. brokers, crm-url, batch-size (see `syncctl <command> --help`)',
    });
  }
  return key;
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

/** Stores a value checked (and typed) by the same definition its flag and variable use. */
export function setProfileValue(
  profile: string,
  name: string,
  value: string,
  options: ConfigStoreOptions = {},
) {
  const key = knownKey(name);
  const checked = checkValue(key, ALL_SETTINGS.get(key)!, value);
  if (!checked.ok) throw new UsageError(`${key} ${checked.problem}`);
  const store = openProfileStore(options.cwd);
  store.set(profile, { ...(store.get(profile) ?? {}), [key]: checked.value });
  return { profile, key, path: store.path };
}

export function getProfileValue(profile: string, name: string, options: ConfigStoreOptions = {}) {
  const store = openProfileStore(options.cwd);
  const key = knownKey(name);
  return { profile, key, value: store.get(profile)?.[key] };
}

/** Any key may be removed, known or not: that is how a hand-edited mistake is cleaned up. */
export function unsetProfileValue(profile: string, name: string, options: ConfigStoreOptions = {}) {
  const store = openProfileStore(options.cwd);
  const key = keyOfFlag(name);
  const values = { ...(store.get(profile) ?? {}) };
  const existed = key in values;
  delete values[key];
  if (Object.keys(values).length === 0) store.delete(profile);
  else store.set(profile, values);
  return { profile, key, removed: existed };
}
