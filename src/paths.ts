import { existsSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, InputError } from './errors.js';

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

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** An fs failure in words an operator acts on, keeping the errno for searching. */
export function describeFsError(err: unknown): string {
  const code = errnoOf(err);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'EROFS':
      return 'read-only file system (EROFS)';
    case 'ENOSPC':
      return 'no space left on the device (ENOSPC)';
    case 'ENOENT':
      return 'its file system does not allow creating it (ENOENT)';
    default:
      return (err as Error).message;
  }
}

/** The path's stats, or undefined when it (or a parent) does not exist. */
export function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    const code = errnoOf(err);
    // ENOTDIR: some ancestor is a file; the walk up finds and names it.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Modes of what syncctl creates that may hold secrets or customer data: profiles, state, rejects. */
export const OWNER_ONLY_FILE = 0o600;
export const OWNER_ONLY_DIR = 0o700;

/**
 * Creates `dir` and any missing parents, one level at a time from the deepest existing ancestor.
 * Not `mkdirSync(dir, {recursive: true})`: on Node 20 that never returns under /proc (it retries the
 * ENOENT forever in a synchronous loop no signal handler can interrupt), and it reports a file in the
 * way as a bare EEXIST/ENOTDIR. `purpose` says which setting the path came from, for the message.
 * `mode` applies to the directories created here (0o700 for those holding secrets or state), never
 * to ones that exist.
 */
export function ensureDir(dir: string, purpose: string, mode?: number): void {
  const missing: string[] = [];
  let current = resolve(dir);
  for (;;) {
    let stats: Stats | undefined;
    try {
      stats = statOrUndefined(current);
    } catch (err) {
      throw new ConfigError(`cannot use ${current} for ${purpose}: ${describeFsError(err)}`, { cause: err });
    }
    if (stats?.isDirectory()) break;
    if (stats) {
      const kind = stats.isFile() ? 'a file' : 'not a directory';
      throw new ConfigError(`${current} is ${kind}, not a directory (needed for ${purpose})`);
    }
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Another process may have created it in between.
      if (errnoOf(err) === 'EEXIST' && statOrUndefined(level)?.isDirectory()) continue;
      throw new ConfigError(`cannot create the directory ${level} for ${purpose}: ${describeFsError(err)}`, {
        cause: err,
      });
    }
  }
}

/**
 * For a file flag (--in, --out, --rejects): a directory there would otherwise surface as a bare EISDIR,
 * or only at the first reject, after the run has done work.
 */
export function rejectDirectory(path: string, flag: string): void {
  let stats: Stats | undefined;
  try {
    stats = statOrUndefined(path);
  } catch {
    return; // opening the file reports it, with the path
  }
  if (stats?.isDirectory()) throw new InputError(`${flag} ${path} is a directory, not a file`);
}
