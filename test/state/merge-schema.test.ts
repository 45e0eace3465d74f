import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { migrateMergeSchema, MERGE_SCHEMA_VERSION, schemaVersion } from '../../src/state/merge-schema.js';
import { MergeStore } from '../../src/state/merge-store.js';
import type { Db } from '../../src/state/db.js';
import { customer, dirtyIds, freshStateUrl, openTestDb, STORE_KINDS } from '../helpers/merge-state.js';

/** The consume tables exactly as syncctl created them before consume_product_refs.pos (schema version 1). */
function version1Ddl(kind: Db['kind']): string[] {
  const bigint = kind === 'postgres' ? 'BIGINT' : 'INTEGER';
  const entity = (table: string) => `CREATE TABLE IF NOT EXISTS ${table} (
       id TEXT PRIMARY KEY, deleted INTEGER NOT NULL, data TEXT, source_version ${bigint},
       source_updated_at TEXT, updated_ms ${bigint}, content_hash TEXT NOT NULL, src_topic TEXT,
       src_partition INTEGER, src_offset TEXT, merged_at TEXT NOT NULL)`;
  const common = [
    entity('consume_customers'),
    entity('consume_products'),
    `CREATE TABLE IF NOT EXISTS consume_product_refs (
       product_id TEXT NOT NULL, customer_id TEXT NOT NULL, PRIMARY KEY (product_id, customer_id))`,
    'CREATE INDEX IF NOT EXISTS consume_product_refs_customer ON consume_product_refs (customer_id)',
    `CREATE TABLE IF NOT EXISTS consume_dirty (
       customer_id TEXT PRIMARY KEY, gen ${bigint} NOT NULL, first_gen ${bigint} NOT NULL,
       marked_at TEXT NOT NULL, claimed_by TEXT, claim_until ${bigint})`,
    'CREATE INDEX IF NOT EXISTS consume_dirty_first_gen ON consume_dirty (first_gen)',
    `CREATE TABLE IF NOT EXISTS consume_ledger (
       customer_id TEXT PRIMARY KEY, delivered_hash TEXT, delivered_key TEXT, delivered_op TEXT,
       delivered_at TEXT, dead_hash TEXT, dead_at TEXT)`,
  ];
  return kind === 'postgres'
    ? [...common, 'CREATE SEQUENCE IF NOT EXISTS consume_gen_seq']
    : [
        ...common,
        'CREATE TABLE IF NOT EXISTS consume_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)',
        `INSERT INTO consume_counters (name, value) VALUES ('gen', 0) ON CONFLICT (name) DO NOTHING`,
      ];
}

/** What version 1 wrote for a merged customer: its row and unordered references (id order on disk). */
async function writeVersion1Customer(
  db: Db,
  id: string,
  productIds: string[],
  deleted = false,
): Promise<void> {
  await db.run(
    `INSERT INTO consume_customers (id, deleted, data, source_version, source_updated_at, updated_ms,
       content_hash, src_topic, src_partition, src_offset, merged_at)
     VALUES (?, ?, ?, 1, '2026-01-01T00:00:00.000Z', 1767225600000, ?, 'customer_data', 0, '7', '2026-01-01T00:00:00.000Z')`,
    [id, deleted ? 1 : 0, JSON.stringify({ id, name: id, productIds }), `sha256:${id}`],
  );
  if (deleted) return;
  for (const productId of [...productIds].sort()) {
    await db.run('INSERT INTO consume_product_refs (product_id, customer_id) VALUES (?, ?)', [productId, id]);
  }
}

async function writeVersion1Product(db: Db, id: string): Promise<void> {
  await db.run(
    `INSERT INTO consume_products (id, deleted, data, source_version, source_updated_at, updated_ms,
       content_hash, src_topic, src_partition, src_offset, merged_at)
     VALUES (?, 0, ?, 1, '2026-01-01T00:00:00.000Z', 1767225600000, ?, 'inventory_data', 0, '3', '2026-01-01T00:00:00.000Z')`,
    [id, JSON.stringify({ id, name: `Product ${id}` }), `sha256:${id}`],
  );
}

async function refsOf(db: Db, customerId: string): Promise<{ product_id: string; pos: number }[]> {
  const rows = await db.query<{ product_id: string; pos: number | string }>(
    'SELECT product_id, pos FROM consume_product_refs WHERE customer_id = ? ORDER BY pos',
    [customerId],
  );
  return rows.map((r) => ({ product_id: r.product_id, pos: Number(r.pos) }));
}

describe.each(STORE_KINDS)('merge schema on %s', (kind) => {
  it('creates the current schema on an empty store, and opening again changes nothing', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    const store = await MergeStore.open(db);
    expect(await schemaVersion(db)).toBe(MERGE_SCHEMA_VERSION);
    await store.mergeBatch([customer('C1', 1, ['P2', 'P1'])]);
    await MergeStore.open(db);
    expect(await refsOf(db, 'C1')).toEqual([
      { product_id: 'P2', pos: 0 },
      { product_id: 'P1', pos: 1 },
    ]);
    expect(await dirtyIds(db)).toEqual(['C1']);
  });

  it('opens an up-to-date store while another connection holds the write lock', async () => {
    const url = await freshStateUrl(kind);
    const writer = await openTestDb(url);
    await MergeStore.open(writer);
    const reader = await openTestDb(url);
    await writer.transaction(async (tx) => {
      // What a consumer mid-merge holds: SQLite's write lock, or the schema lock on PostgreSQL.
      if (tx.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(7351001)');
      await tx.run(`UPDATE consume_meta SET value = value WHERE name = 'schema_version'`);
      // Bounded: before the fix this open waited for the writer, which waited for it.
      const opened = await Promise.race([
        MergeStore.open(reader).then(() => 'opened'),
        sleep(5_000).then(() => 'blocked by the writer'),
      ]);
      expect(opened).toBe('opened');
    });
  });

  it('upgrades a store made by version 1: references numbered in record order, outbox and ledger kept', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    for (const sql of version1Ddl(db.kind)) await db.exec(sql);
    await writeVersion1Customer(db, 'C1', ['P3', 'P1', 'P2']);
    await writeVersion1Customer(db, 'C2', []);
    await writeVersion1Customer(db, 'C3', ['P1'], true);
    await writeVersion1Product(db, 'P1');
    await writeVersion1Product(db, 'P3');
    await db.run(
      `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at) VALUES ('C1', 4, 4, '2026-01-01T00:00:00Z')`,
    );
    await db.run(
      `INSERT INTO consume_ledger (customer_id, delivered_hash, delivered_op, dead_hash) VALUES ('C2', 'h2', 'upsert', 'd2')`,
    );

    const store = await MergeStore.open(db);
    expect(await schemaVersion(db)).toBe(MERGE_SCHEMA_VERSION);
    expect(await refsOf(db, 'C1')).toEqual([
      { product_id: 'P3', pos: 0 },
      { product_id: 'P1', pos: 1 },
      { product_id: 'P2', pos: 2 },
    ]);
    expect(await refsOf(db, 'C3')).toEqual([]);
    const record = (await store.buildUnified(['C1'])).get('C1')?.delivery.sink.record as {
      products: { productId: string }[];
      unresolvedProductIds: string[];
    };
    expect(record.products.map((p) => p.productId)).toEqual(['P3', 'P1']);
    expect(record.unresolvedProductIds).toEqual(['P2']);
    expect(await dirtyIds(db)).toEqual(['C1']);
    expect((await store.ledger(['C2'])).get('C2')).toEqual({
      deliveredHash: 'h2',
      deliveredOp: 'upsert',
      deadHash: 'd2',
    });
    // Generations continue after the ones version 1 handed out.
    expect((await store.mergeBatch([customer('C4', 1, [])])).gen).toBeGreaterThan(0);
    expect(await store.counts()).toMatchObject({ customers: 3, products: 2, dirty: 2 });
  });

  it('an upgrade interrupted before it finished runs again on the next open', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    for (const sql of version1Ddl(db.kind)) await db.exec(sql);
    await writeVersion1Customer(db, 'C1', ['P2', 'P1']);
    // As if a start had added the column and then been killed: nothing else of the upgrade committed.
    await db.exec('ALTER TABLE consume_product_refs ADD COLUMN pos INTEGER');
    await migrateMergeSchema(db, (data) => (data?.productIds as string[] | undefined) ?? []);
    expect(await refsOf(db, 'C1')).toEqual([
      { product_id: 'P2', pos: 0 },
      { product_id: 'P1', pos: 1 },
    ]);
  });
});
