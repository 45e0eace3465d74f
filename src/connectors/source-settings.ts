/**
 * How a connector's config relates to its settings (settings/sources.ts): each definition names
 * the config field it fills, so a connector builds, defaults and validates its config from the same
 * definitions that make the flags, variables and profile keys — also when code builds the config.
 */
import { ConfigError } from '../errors.js';
import { checkValue, whereToSet, type SettingGroup, type SettingValue } from '../settings/index.js';

/** Builds the error for one invalid setting (`field` is a config field such as "fields.id"). */
export type SettingError = (field: string, problem: string) => ConfigError;

export function settingErrors(label: string, group: SettingGroup): SettingError {
  const keyOf = new Map(Object.entries(group).map(([key, def]) => [def.field ?? key, key]));
  return (field, problem) => {
    const key = keyOf.get(field);
    return new ConfigError(
      `${label} setting ${field} ${problem}`,
      key ? { hint: `set it with ${whereToSet(key)}` } : {},
    );
  };
}

function readField(config: Record<string, unknown>, path: string): unknown {
  let current: unknown = config;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function writeField(config: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let target = config;
  for (const part of parts.slice(0, -1)) {
    const next = target[part];
    target = (next !== null && typeof next === 'object' ? next : (target[part] = {})) as Record<
      string,
      unknown
    >;
  }
  target[parts[parts.length - 1] as string] = value;
}

/** The connector config the values of a group make; unset values are left out so defaults apply. */
export function configFromValues(
  group: SettingGroup,
  values: Readonly<Record<string, SettingValue | undefined>>,
): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(group)) {
    const value = values[key];
    if (value !== undefined) writeField(config, def.field ?? key, value);
  }
  return config;
}

/** The defaults of a group, shaped as the connector's config. */
export function configDefaults(group: SettingGroup): Record<string, unknown> {
  const defaults: Record<string, SettingValue | undefined> = {};
  for (const [key, def] of Object.entries(group)) defaults[key] = def.default;
  return configFromValues(group, defaults);
}

/** Checks (and normalises, e.g. "5000" → 5000) every set field of a config by its setting's definition. */
export function checkConfig(config: Record<string, unknown>, group: SettingGroup, fail: SettingError): void {
  for (const [key, def] of Object.entries(group)) {
    const field = def.field ?? key;
    const value = readField(config, field);
    if (value === undefined) continue;
    const checked = checkValue(key, def, value);
    if (!checked.ok) throw fail(field, checked.problem);
    writeField(config, field, checked.value);
  }
}

/** The keys of `value` that are set: an unset field must not hide a default. */
export function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
