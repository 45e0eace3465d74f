/**
 * A private consume state store (SQLite file or PostgreSQL schema) for one test, and builders for
 * the records merged into it. Cleanup is registered on the running test.
 */
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { makeEnvelope, type Envelope } from '../../src/records/envelope.js';
import { openDb, type Db } from '../../src/state/db.js';
import type { MergeItem } from '../../src/state/merge-store.js';
import { createPgSchema } from './postgres.js';
import { tempDir } from './temp.js';

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: StoreKind[] = ['sqlite', 'postgres'];

/** A new, empty database location of this kind, dropped when the test ends. */
export async function freshStateUrl(kind: StoreKind): Promise<string> {
  if (kind === 'sqlite') return join(tempDir('syncctl-state-'), 'state.db');
  const schema = await createPgSchema('merge_state');
  onTestFinished(() => schema.drop());
  return schema.url;
}

/** Opens a database connection, closed when the test ends. */
export async function openTestDb(url: string): Promise<Db> {
  const db = await openDb(url);
  onTestFinished(() => db.close());
  return db;
}

let offset = 0;

function at(version: number): string {
  return new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString();
}

export function item(envelope: Envelope): MergeItem {
  return {
    entity: envelope.entity,
    id: envelope.id,
    envelope,
    position: { topic: envelope.entity === 'customer' ? 'c' : 'p', partition: 0, offset: String(offset++) },
  };
}

export function customer(
  id: string,
  version: number,
  productIds: string[],
  extra: Record<string, unknown> = {},
): MergeItem {
  return item(
    makeEnvelope({
      source: 'crm',
      id,
      op: 'upsert',
      data: { id, name: `Name ${id} v${version}`, productIds, ...extra },
      sourceUpdatedAt: at(version),
      sourceVersion: version,
    }),
  );
}

export function product(id: string, version: number, extra: Record<string, unknown> = {}): MergeItem {
  return item(
    makeEnvelope({
      source: 'inventory',
      id,
      op: 'upsert',
      data: { id, name: `Product ${id} v${version}`, price: version * 10, discontinued: false, ...extra },
      sourceUpdatedAt: at(version),
      sourceVersion: version,
    }),
  );
}

export function tombstone(entity: 'customer' | 'product', id: string): MergeItem {
  return { entity, id, envelope: null, position: { topic: 'c', partition: 0, offset: String(offset++) } };
}

export async function dirtyIds(db: Db): Promise<string[]> {
  const rows = await db.query<{ customer_id: string }>(
    'SELECT customer_id FROM consume_dirty ORDER BY customer_id',
  );
  return rows.map((r) => r.customer_id);
}
