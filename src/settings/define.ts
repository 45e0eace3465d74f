/**
 * One definition per setting. Everything else an operator sees of a setting is generated from it:
 * the command-line flag, the SYNCCTL_* variable, the profile key, the help line, the "set it with"
 * hint, validation (see ./schema.ts) and whether redaction must hide it.
 */

export type SettingType = 'string' | 'integer' | 'boolean';
export type SettingValue = string | number | boolean;

export interface SettingDef {
  type: SettingType;
  description: string;
  default?: SettingValue;
  /** Help text for a default computed elsewhere (e.g. "per pagination style"). */
  defaultText?: string;
  /** Inclusive bounds of an integer. */
  min?: number;
  max?: number;
  /** The allowed values of a string. */
  choices?: readonly string[];
  /** Tokens and passwords: masked by `config list`, rerun hints and every printed message. */
  secret?: boolean;
  /** Placeholder of the flag's value in help, e.g. "<url>". */
  arg?: string;
  /** A one-letter alias, e.g. "-s". */
  short?: string;
  /** Where a connector's config keeps it ("fields.id"): lets a connector validate its own config by the same rules. */
  field?: string;
  /** An empty value is refused (names, addresses); otherwise "" is a value, often meaning "none". */
  nonEmpty?: boolean;
}

export type SettingGroup = Readonly<Record<string, SettingDef>>;

/** Keeps the literal types of a group so resolved values are typed (number for integers, …). */
export function defineSettings<const G extends SettingGroup>(group: G): G {
  return group;
}

type ValueOf<D> = D extends { type: 'integer' } ? number : D extends { type: 'boolean' } ? boolean : string;

/** What resolving a group yields: settings with a default are always present. */
export type SettingValues<G extends SettingGroup> = {
  -readonly [K in keyof G]: G[K] extends { default: SettingValue }
    ? ValueOf<G[K]>
    : ValueOf<G[K]> | undefined;
};

function kebab(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** crmUrl → SYNCCTL_CRM_URL. */
export function envName(key: string): string {
  return `SYNCCTL_${kebab(key).replace(/-/g, '_').toUpperCase()}`;
}

/** crmUrl → --crm-url. */
export function flagName(key: string): string {
  return `--${kebab(key)}`;
}

/** --crm-url or crm-url → crmUrl (how commander and profiles name it). */
export function keyOfFlag(name: string): string {
  return name.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The three ways to set a setting, for hints. */
export function whereToSet(key: string): string {
  return `${flagName(key)}, ${envName(key)} or profile key ${key}`;
}

function defined<G extends SettingGroup>(group: G, key: string): string {
  if (!Object.hasOwn(group, key)) throw new Error(`${key} is not a setting of this group`);
  return key;
}

/**
 * A setting's flag for a message, e.g. flagOf(FETCH_SETTINGS, 'full') → "--full". Taking the group
 * makes a hint that names a flag no command has a type error, not a silent lie.
 */
export function flagOf<G extends SettingGroup>(group: G, key: keyof G & string): string {
  return flagName(defined(group, key));
}

/** A setting's SYNCCTL_* variable, e.g. for export lines; checked against its group like flagOf. */
export function envOf<G extends SettingGroup>(group: G, key: keyof G & string): string {
  return envName(defined(group, key));
}

/** "--crm-token / SYNCCTL_CRM_TOKEN" for hints; several settings are joined with ", ". */
export function flagsAndEnv<G extends SettingGroup>(group: G, ...keys: (keyof G & string)[]): string {
  return keys.map((key) => `${flagName(defined(group, key))} / ${envName(key)}`).join(', ');
}

/** "must be an integer ≥ 1" — the rule a value broke, in words. */
export function describeRule(def: SettingDef): string {
  if (def.type === 'boolean') return 'must be true or false';
  if (def.type === 'integer') {
    if (def.min !== undefined && def.max !== undefined)
      return `must be an integer from ${def.min} to ${def.max}`;
    if (def.min !== undefined) return `must be an integer ≥ ${def.min}`;
    return 'must be an integer';
  }
  if (def.choices) return `must be one of ${def.choices.join(', ')}`;
  return 'must be a string';
}

export function defaultLabel(def: SettingDef): string | undefined {
  if (def.defaultText !== undefined) return def.defaultText;
  if (def.default === undefined || def.type === 'boolean') return undefined;
  return def.default === '' ? '""' : String(def.default);
}

/** The help line of a setting: its description, default and variable. */
export function helpText(key: string, def: SettingDef): string {
  const dflt = defaultLabel(def);
  const extras = [dflt === undefined ? undefined : `default ${dflt}`, envName(key)].filter(Boolean);
  return `${def.description} (${extras.join('; ')})`;
}

/** The commander flag spec, e.g. "-s, --source <name>". */
export function flagSpec(key: string, def: SettingDef): string {
  // A switch that is on by default is turned off with --no-<name> (commander's negatable form).
  const long = def.type === 'boolean' && def.default === true ? `--no-${kebab(key)}` : flagName(key);
  const value = def.type === 'boolean' ? '' : ` ${def.arg ?? (def.type === 'integer' ? '<n>' : '<value>')}`;
  return `${def.short ? `${def.short}, ` : ''}${long}${value}`;
}
