/** Shared by the fetch CLI tests: temp state, NDJSON reading, checkpoint peeking. */
import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Envelope } from '../../src/records/envelope.js';
import { tempDir as makeTempDir } from '../helpers/temp.js';

export function tempDir(prefix = 'syncctl-fetch-'): string {
  return makeTempDir(prefix);
}

export function readNdjson(path: string): Envelope[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Envelope);
}

export function parseNdjson(text: string): Envelope[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Envelope);
}

/** Reads one checkpoint from a state file another process is writing (WAL: readers do not block it). */
export function readCheckpoint<T = Record<string, unknown>>(statePath: string, name: string): T | undefined {
  if (!existsSync(statePath)) return undefined;
  const db = new Database(statePath, { readonly: true, fileMustExist: true });
  try {
    const exists = db
      .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='checkpoints'")
      .get();
    if (!exists) return undefined;
    const row = db.prepare('SELECT value FROM checkpoints WHERE name = ?').get(name) as
      { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  } finally {
    db.close();
  }
}

export function listCheckpoints(
  statePath: string,
  prefix: string,
): { name: string; value: Record<string, unknown> }[] {
  if (!existsSync(statePath)) return [];
  const db = new Database(statePath, { readonly: true, fileMustExist: true });
  try {
    const exists = db
      .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='checkpoints'")
      .get();
    if (!exists) return [];
    const rows = db.prepare('SELECT name, value FROM checkpoints WHERE name LIKE ?').all(`${prefix}%`) as {
      name: string;
      value: string;
    }[];
    return rows.map((r) => ({ name: r.name, value: JSON.parse(r.value) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

/** Every id exactly once; returns the ids in order of appearance. */
export function idsOf(envelopes: Envelope[]): string[] {
  return envelopes.map((e) => e.id);
}

export function duplicates(values: string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) dups.add(v);
    seen.add(v);
  }
  return [...dups];
}
