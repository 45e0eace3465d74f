import { StateError } from '../errors.js';
import type { Db } from './db.js';
import { chunks, placeholders } from './sql.js';

/**
 * The consume stage's tables, for SQLite and PostgreSQL, and the upgrades of stores made by earlier
 * versions. Every statement is idempotent, and all of it runs in one transaction (under an advisory
 * lock on PostgreSQL), so instances starting at once, or a start killed half-way, are harmless.
 *
 *   consume_customers, consume_products   the latest merged version of each entity
 *   consume_product_refs                  which products a customer references, in its order (pos)
 *   consume_dirty                         the outbox: customers whose unified record may have changed
 *   consume_ledger                        what Analytics acknowledged (or refused) per customer
 *   consume_meta                          the schema version of these tables
 */

/** Version 2: consume_product_refs.pos, so the read model need not re-parse customer JSON. */
export const MERGE_SCHEMA_VERSION = 2;

const entityTable = (table: string, bigint: string) => `CREATE TABLE IF NOT EXISTS ${table} (
   id TEXT PRIMARY KEY,
   deleted INTEGER NOT NULL,
   data TEXT,
   source_version ${bigint},
   source_updated_at TEXT,
   updated_ms ${bigint},
   content_hash TEXT NOT NULL,
   src_topic TEXT,
   src_partition INTEGER,
   src_offset TEXT,
   merged_at TEXT NOT NULL
 )`;

function ddl(kind: Db['kind']): string[] {
  const bigint = kind === 'postgres' ? 'BIGINT' : 'INTEGER';
  const common = [
    entityTable('consume_customers', bigint),
    entityTable('consume_products', bigint),
    // pos is nullable only because version 1 stores gain it by ALTER TABLE; every write sets it.
    `CREATE TABLE IF NOT EXISTS consume_product_refs (
       product_id TEXT NOT NULL,
       customer_id TEXT NOT NULL,
       pos INTEGER,
       PRIMARY KEY (product_id, customer_id)
     )`,
    'CREATE INDEX IF NOT EXISTS consume_product_refs_customer ON consume_product_refs (customer_id)',
    `CREATE TABLE IF NOT EXISTS consume_dirty (
       customer_id TEXT PRIMARY KEY,
       gen ${bigint} NOT NULL,
       first_gen ${bigint} NOT NULL,
       marked_at TEXT NOT NULL,
       claimed_by TEXT,
       claim_until ${bigint}
     )`,
    'CREATE INDEX IF NOT EXISTS consume_dirty_first_gen ON consume_dirty (first_gen)',
    `CREATE TABLE IF NOT EXISTS consume_ledger (
       customer_id TEXT PRIMARY KEY,
       delivered_hash TEXT,
       delivered_key TEXT,
       delivered_op TEXT,
       delivered_at TEXT,
       dead_hash TEXT,
       dead_at TEXT
     )`,
    'CREATE TABLE IF NOT EXISTS consume_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
  ];
  if (kind === 'postgres') return [...common, 'CREATE SEQUENCE IF NOT EXISTS consume_gen_seq'];
  return [
    ...common,
    'CREATE TABLE IF NOT EXISTS consume_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)',
    `INSERT INTO consume_counters (name, value) VALUES ('gen', 0) ON CONFLICT (name) DO NOTHING`,
  ];
}

/** Reads a customer's product ids from its stored data (the configured --product-ref-path). */
export type ProductIdsOf = (data: Record<string, unknown> | null) => string[];

/** The schema version of the consume tables: 1 for a store made before consume_meta existed. */
export async function schemaVersion(db: Db): Promise<number> {
  const rows = await db.query<{ value: string }>(
    `SELECT value FROM consume_meta WHERE name = 'schema_version'`,
  );
  return rows[0] ? Number(rows[0].value) : 1;
}

async function hasColumn(tx: Db, table: string, column: string): Promise<boolean> {
  const rows =
    tx.kind === 'postgres'
      ? await tx.query(
          `SELECT 1 FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`,
          [table, column],
        )
      : await tx.query(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`, [column]);
  return rows.length > 0;
}

/**
 * Version 1 → 2: adds consume_product_refs.pos and rewrites the references of every customer that
 * has any, numbered in the order its record lists them.
 */
async function addRefPositions(tx: Db, productIdsOf: ProductIdsOf): Promise<void> {
  if (!(await hasColumn(tx, 'consume_product_refs', 'pos'))) {
    await tx.exec('ALTER TABLE consume_product_refs ADD COLUMN pos INTEGER');
  }
  const pending = await tx.query<{ customer_id: string }>(
    'SELECT DISTINCT customer_id FROM consume_product_refs WHERE pos IS NULL ORDER BY customer_id',
  );
  for (const part of chunks(pending.map((r) => r.customer_id))) {
    const customers = await tx.query<{ id: string; deleted: number | string; data: string | null }>(
      `SELECT id, deleted, data FROM consume_customers WHERE id IN (${placeholders(part.length)})`,
      part,
    );
    await tx.run(
      `DELETE FROM consume_product_refs WHERE customer_id IN (${placeholders(part.length)})`,
      part,
    );
    const rows: [string, string, number][] = [];
    for (const c of customers) {
      if (Number(c.deleted) === 1 || c.data === null) continue;
      productIdsOf(JSON.parse(c.data) as Record<string, unknown>).forEach((productId, pos) =>
        rows.push([productId, c.id, pos]),
      );
    }
    await insertRefs(tx, rows);
  }
}

/** Writes (product_id, customer_id, pos) rows. */
export async function insertRefs(tx: Db, rows: [string, string, number][]): Promise<void> {
  for (const part of chunks(rows)) {
    await tx.run(
      `INSERT INTO consume_product_refs (product_id, customer_id, pos) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}
       ON CONFLICT DO NOTHING`,
      part.flat(),
    );
  }
}

/** Creates the consume tables, or upgrades them to MERGE_SCHEMA_VERSION. */
export async function migrateMergeSchema(db: Db, productIdsOf: ProductIdsOf): Promise<void> {
  // An up-to-date store needs no write lock: a reader (export, status) opens it while consume runs.
  const current = await schemaVersion(db).catch(() => 0);
  if (current >= MERGE_SCHEMA_VERSION) return;
  try {
    await db.transaction(async (tx) => {
      // Same lock as db.ts migrate(): DDL of instances starting together runs one at a time.
      if (tx.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(7351001)');
      for (const sql of ddl(tx.kind)) await tx.exec(sql);
      const version = await schemaVersion(tx);
      if (version >= MERGE_SCHEMA_VERSION) return;
      if (version < 2) await addRefPositions(tx, productIdsOf);
      await tx.run(
        `INSERT INTO consume_meta (name, value) VALUES ('schema_version', ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
        [String(MERGE_SCHEMA_VERSION)],
      );
    });
  } catch (err) {
    throw new StateError(`cannot create the consume tables in ${db.location}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
