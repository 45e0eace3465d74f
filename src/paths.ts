import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the syncctl package root above ${start}`);
    dir = parent;
  }
}

/** The installed package's root: the same whether running from src/ (tests) or dist/ (the CLI). */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** Where syncctl keeps state (SQLite store, sandbox) unless told otherwise. */
export function defaultStateDir(): string {
  if (process.env.SYNCCTL_STATE_DIR) return process.env.SYNCCTL_STATE_DIR;
  const base = process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  return join(base, 'syncctl');
}

/** Where downloaded tooling (the Kafka jars) is cached, outside the repository. */
export function defaultCacheDir(): string {
  if (process.env.SYNCCTL_CACHE_DIR) return process.env.SYNCCTL_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'syncctl');
}
