/**
 * Configuration helpers the CRM and Inventory sources share: settings read from flags > SYNCCTL_*
 * environment > profile, and validation whose messages name the setting and how to set it.
 */
import { ConfigError } from '../errors.js';
import { pick, type SettingsSource } from '../settings.js';

/** Builds the error for one invalid setting (`field` is a config key such as "fields.id"). */
export type SettingError = (field: string, problem: string) => ConfigError;

/** `sources` maps a config key to where an operator sets it ("--crm-url / SYNCCTL_CRM_URL"). */
export function settingErrors(label: string, sources: Readonly<Record<string, string>>): SettingError {
  return (field, problem) => {
    const where = sources[field];
    return new ConfigError(
      `${label} setting ${field} ${problem}`,
      where ? { hint: `set it with ${where}` } : {},
    );
  };
}

/** The keys of `value` that are set: an unset flag must not hide a default. */
export function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function checkStrings<T extends object>(
  values: T,
  keys: readonly (keyof T & string)[],
  fail: SettingError,
  prefix = '',
): void {
  for (const key of keys) {
    if (typeof values[key] !== 'string') throw fail(`${prefix}${key}`, 'must be a string');
  }
}

/** Each [key, min]: the setting must be an integer ≥ min. */
export function checkIntegers<T extends object>(
  values: T,
  mins: readonly [keyof T & string, number][],
  fail: SettingError,
): void {
  for (const [key, min] of mins) {
    const value = values[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw fail(key, `must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
    }
  }
}

/**
 * Readers of one source's settings; keys are the camelCase flag names (`crmUrl` ↔ --crm-url ↔
 * SYNCCTL_CRM_URL). Numbers are picked as strings and then converted with a check, so a bad
 * environment or profile value fails naming its setting.
 */
export function settingReaders<F extends { [K in keyof F]?: string | number }>(
  settings: SettingsSource,
  flags: F,
  fail: SettingError,
): {
  str: (key: keyof F & string) => string | undefined;
  num: (key: keyof F & string, field: string) => number | undefined;
} {
  const str = (key: keyof F & string): string | undefined => {
    const flag = flags[key];
    return pick<string>(settings, key, flag === undefined ? undefined : String(flag));
  };
  const num = (key: keyof F & string, field: string): number | undefined => {
    const raw = str(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw fail(field, `must be a number, got "${raw}"`);
    return n;
  };
  return { str, num };
}
