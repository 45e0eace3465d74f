import { ConfigError, UsageError, type SyncError } from '../errors.js';
import { addSecret } from '../redact.js';
import {
  envName,
  flagName,
  type SettingDef,
  type SettingGroup,
  type SettingValue,
  type SettingValues,
} from './define.js';
import type { SettingsSource } from './profiles.js';
import { checkValue } from './registry.js';

interface Origin {
  /** How the value was given, for messages: "--crm-page-size", "SYNCCTL_CRM_PAGE_SIZE", … */
  name: string;
  error: (message: string) => SyncError;
}

function originOf(kind: 'flag' | 'env' | 'profile', key: string, source: SettingsSource): Origin {
  if (kind === 'flag') return { name: flagName(key), error: (m) => new UsageError(m) };
  if (kind === 'env') {
    return {
      name: envName(key),
      error: (m) =>
        new ConfigError(m, { hint: `fix or unset ${envName(key)} (${flagName(key)} overrides it)` }),
    };
  }
  return {
    name: `${key} in profile "${source.profileName}" (${source.profilePath})`,
    error: (m) =>
      new ConfigError(m, {
        hint: `fix it with \`syncctl --profile ${source.profileName} config set ${key} VALUE\``,
      }),
  };
}

/** A secret setting, and the password of any URL (a database or API URL with credentials), is masked in all output. */
function rememberSecrets(def: SettingDef, value: string): void {
  if (def.secret) addSecret(value);
  if (!value.includes('@')) return;
  try {
    const password = new URL(value).password;
    if (password) {
      addSecret(password);
      addSecret(decodeURIComponent(password));
    }
  } catch {
    // Not a URL: nothing embedded to hide.
  }
}

function resolveOne(
  key: string,
  def: SettingDef,
  source: SettingsSource,
  flag: unknown,
): SettingValue | undefined {
  let kind: 'flag' | 'env' | 'profile' | undefined;
  let raw: unknown;
  const fromEnv = source.env[envName(key)];
  if (flag !== undefined) [kind, raw] = ['flag', flag];
  // An empty variable counts as unset, as shells make it easy to export one by accident.
  else if (fromEnv !== undefined && fromEnv !== '') [kind, raw] = ['env', fromEnv];
  else if (source.profile[key] !== undefined) [kind, raw] = ['profile', source.profile[key]];
  if (kind === undefined) return def.default;
  const checked = checkValue(key, def, raw);
  if (!checked.ok) {
    const origin = originOf(kind, key, source);
    throw origin.error(`${origin.name} ${checked.problem}`);
  }
  if (typeof checked.value === 'string') rememberSecrets(def, checked.value);
  return checked.value;
}

/**
 * The values of a group of settings: flags > SYNCCTL_* environment > profile > defaults, each
 * checked against its definition; an invalid one fails naming where it was given.
 */
export function resolveSettings<G extends SettingGroup>(
  group: G,
  source: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): SettingValues<G> {
  const values: Record<string, SettingValue | undefined> = {};
  for (const [key, def] of Object.entries(group)) values[key] = resolveOne(key, def, source, flags[key]);
  return values as SettingValues<G>;
}
