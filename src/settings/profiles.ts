import Conf from 'conf';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';
import { ensureDir, OWNER_ONLY_DIR, OWNER_ONLY_FILE } from '../paths.js';
import { checkProfileValues } from './registry.js';

/** Everything a profile may hold; each key is also a flag and a SYNCCTL_<KEY> variable. */
export type ProfileValues = Record<string, string | number | boolean>;

export interface SettingsSource {
  env: NodeJS.ProcessEnv;
  profile: ProfileValues;
  profileName: string;
  /** The profiles file, named in messages about a stored value. */
  profilePath: string;
}

export function openProfileStore(cwd?: string): Conf<Record<string, ProfileValues>> {
  // conf would create the directory with the umask's mode (usually world-readable); it holds tokens.
  ensureDir(
    cwd ?? dirname(profilesPath({ ...process.env, SYNCCTL_CONFIG_DIR: undefined })),
    'the syncctl profiles',
    OWNER_ONLY_DIR,
  );
  return new Conf<Record<string, ProfileValues>>({
    projectName: 'syncctl',
    projectSuffix: '',
    configName: 'profiles',
    configFileMode: OWNER_ONLY_FILE,
    ...(cwd ? { cwd } : {}),
  });
}

/** Where conf keeps the file, for messages when conf itself cannot open it (a corrupt file). */
export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYNCCTL_CONFIG_DIR) return join(env.SYNCCTL_CONFIG_DIR, 'profiles.json');
  const home = homedir();
  if (process.platform === 'darwin') return join(home, 'Library', 'Preferences', 'syncctl', 'profiles.json');
  if (process.platform === 'win32') {
    return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'syncctl', 'Config', 'profiles.json');
  }
  return join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'syncctl', 'profiles.json');
}

/** The profile store, or a ConfigError naming the file when it cannot be read. */
export function readProfileStore(env: NodeJS.ProcessEnv = process.env): Conf<Record<string, ProfileValues>> {
  try {
    return openProfileStore(env.SYNCCTL_CONFIG_DIR);
  } catch (err) {
    throw new ConfigError(
      `cannot read the config profiles in ${profilesPath(env)}: ${(err as Error).message}`,
      {
        cause: err,
        hint: 'fix or remove that file (it is JSON: one object of settings per profile name)',
      },
    );
  }
}

/**
 * The profile a command runs with: --profile, else SYNCCTL_PROFILE, else "default". A profile
 * named by the operator must exist (a typo must not silently run against other settings); only the
 * implicit "default" may be missing. A stored key or value that is not valid is reported here,
 * naming the profile and the file.
 */
export interface LoadOptions {
  /** A named profile must exist (false for commands that create profiles). */
  requireExisting?: boolean;
  /** Check the stored values (false for `config`, which is how bad values get fixed). */
  validate?: boolean;
}

export function loadSettings(
  profileName: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  { requireExisting = true, validate = true }: LoadOptions = {},
): SettingsSource {
  const fromEnv =
    env.SYNCCTL_PROFILE !== undefined && env.SYNCCTL_PROFILE !== '' ? env.SYNCCTL_PROFILE : undefined;
  const name = profileName ?? fromEnv ?? 'default';
  const store = readProfileStore(env);
  if (requireExisting && name !== 'default' && !store.has(name)) {
    const given = profileName !== undefined ? `--profile ${name}` : `SYNCCTL_PROFILE=${name}`;
    throw new ConfigError(`profile "${name}" does not exist (${given}; profiles in ${store.path})`, {
      hint: `create it with \`syncctl --profile ${name} config set KEY VALUE\`, or see \`syncctl config list\``,
    });
  }
  const profile = store.get(name) ?? {};
  const bad = validate ? checkProfileValues(profile) : undefined;
  if (bad) {
    throw new ConfigError(`profile "${name}" in ${store.path}: ${bad.key} ${bad.problem}`, {
      hint: `fix it with \`syncctl --profile ${name} config set ${bad.key} VALUE\` or remove it with \`config unset ${bad.key}\``,
    });
  }
  return { env, profile, profileName: name, profilePath: store.path };
}
