/**
 * Reads the merge tables for `export-csv`: the current unified view (one record per live customer,
 * built exactly as `consume` builds what it delivers), or the customer or product rows alone.
 *
 * Streaming with flat memory by keyset pagination (`WHERE id > last ORDER BY id LIMIT n`) through
 * the Db interface, the same on SQLite and PostgreSQL: each page is one short query, so no read
 * transaction or server-side cursor stays open for the length of an export (a long SQLite reader
 * would hold back WAL checkpoints; a PostgreSQL cursor would pin a pooled connection), and no new
 * dependency is needed. Pages see rows committed before they are read: a customer merged during the
 * export appears if its id is not yet passed, and each record is consistent with its products as of
 * its page.
 */
import type { Entity } from '../records/envelope.js';
import { buildUnified, type MergedEntity, type UnifiedRecord } from '../merge/unified.js';
import { withoutEnvelopeRefs } from '../merge/product-refs.js';
import type { Db } from './db.js';
import { MergeStore } from './merge-store.js';

const TABLE: Record<Entity, string> = { customer: 'consume_customers', product: 'consume_products' };
const COLUMNS = 'id, deleted, data, source_version, source_updated_at, content_hash, merged_at';
const IN_CHUNK = 500;

type StoredRow = {
  id: string;
  deleted: number | string;
  data: string | null;
  source_version: number | string | null;
  source_updated_at: string | null;
  content_hash: string;
  merged_at: string;
};

/** One row of the consume_customers or consume_products table. */
export interface StoredEntity extends MergedEntity {
  /** When syncctl merged this version (ISO): what `--since` compares. */
  mergedAt: string;
}

export interface UnifiedRow {
  record: UnifiedRecord;
  /** The latest merge time of the customer and the products it references (ISO). */
  changedAt: string;
}

export interface ReadOptions {
  /** Only rows changed at or after this ISO time (merge time in the state store). */
  since?: string;
  /** Rows per query. */
  pageSize?: number;
}

export interface UnifiedReadOptions extends ReadOptions {
  /** consume's --product-ref-path: only used to upgrade a store written before references were ordered. */
  productRefPath?: string;
}

function toEntity(row: StoredRow): StoredEntity {
  return {
    id: row.id,
    deleted: Number(row.deleted) === 1,
    data: row.data === null ? null : withoutEnvelopeRefs(JSON.parse(row.data) as Record<string, unknown>),
    sourceVersion:
      row.source_version === null || row.source_version === undefined ? null : Number(row.source_version),
    sourceUpdatedAt: row.source_updated_at,
    contentHash: row.content_hash,
    mergedAt: row.merged_at,
  };
}

async function tablesExist(db: Db): Promise<boolean> {
  const sql =
    db.kind === 'postgres'
      ? `SELECT 1 AS ok FROM information_schema.tables WHERE table_name = 'consume_customers' AND table_schema = ANY (current_schemas(false))`
      : `SELECT 1 AS ok FROM sqlite_master WHERE type = 'table' AND name = 'consume_customers'`;
  return (await db.query(sql)).length > 0;
}

/** Pages through one table in id order; `liveOnly` leaves deleted rows out. */
async function* pages(db: Db, entity: Entity, liveOnly: boolean, pageSize: number) {
  if (!(await tablesExist(db))) return;
  let after = '';
  for (;;) {
    const rows = await db.query<StoredRow>(
      `SELECT ${COLUMNS} FROM ${TABLE[entity]} WHERE id > ?${liveOnly ? ' AND deleted = 0' : ''} ORDER BY id LIMIT ?`,
      [after, pageSize],
    );
    if (rows.length === 0) return;
    yield rows.map(toEntity);
    after = (rows[rows.length - 1] as StoredRow).id;
    if (rows.length < pageSize) return;
  }
}

async function loadProducts(db: Db, ids: string[]): Promise<Map<string, StoredEntity>> {
  const out = new Map<string, StoredEntity>();
  const unique = [...new Set(ids)].sort();
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const part = unique.slice(i, i + IN_CHUNK);
    const rows = await db.query<StoredRow>(
      `SELECT ${COLUMNS} FROM consume_products WHERE id IN (${part.map(() => '?').join(', ')})`,
      part,
    );
    for (const row of rows) out.set(row.id, toEntity(row));
  }
  return out;
}

/**
 * The current unified view in customer id order: the record `consume` would deliver for every
 * customer that is not deleted.
 */
export async function* readUnifiedView(db: Db, options: UnifiedReadOptions = {}): AsyncGenerator<UnifiedRow> {
  if (!(await tablesExist(db))) return;
  // Opening upgrades a store an older syncctl wrote (reference order); an up-to-date one is only read.
  const store = await MergeStore.open(db, {
    ...(options.productRefPath !== undefined ? { productRefPath: options.productRefPath } : {}),
  });
  for await (const customers of pages(db, 'customer', true, options.pageSize ?? 500)) {
    // The references consume stored (from the envelope or --product-ref-path), in the record's order.
    const stored = await store.entities.productRefs(customers.map((c) => c.id));
    const refs = customers.map((c) => stored.get(c.id) ?? []);
    const products = await loadProducts(db, refs.flat());
    for (const [i, customer] of customers.entries()) {
      const ids = refs[i] as string[];
      let changedAt = customer.mergedAt;
      for (const id of ids) {
        const at = products.get(id)?.mergedAt;
        if (at !== undefined && at > changedAt) changedAt = at;
      }
      if (options.since !== undefined && changedAt < options.since) continue;
      const delivery = buildUnified(customer.id, customer, ids, products);
      if (delivery.sink.op !== 'upsert' || delivery.sink.record === null) continue;
      yield { record: delivery.sink.record as unknown as UnifiedRecord, changedAt };
    }
  }
}

/**
 * The customer rows (not deleted) or every product row (deleted ones too: the unified view shows
 * them as discontinued), in id order.
 */
export async function* readEntities(
  db: Db,
  entity: Entity,
  options: ReadOptions = {},
): AsyncGenerator<StoredEntity> {
  for await (const rows of pages(db, entity, entity === 'customer', options.pageSize ?? 1000)) {
    for (const row of rows) {
      if (options.since !== undefined && row.mergedAt < options.since) continue;
      yield row;
    }
  }
}
