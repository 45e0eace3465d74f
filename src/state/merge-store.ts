import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { StateError } from '../errors.js';
import { contentHashOf, type Entity, type Envelope } from '../records/envelope.js';
import { compareVersions, isUnversioned, parseUpdatedMs, type VersionStamp } from '../merge/version.js';
import { extractProductIds, parseProductRefPath, DEFAULT_PRODUCT_REF_PATH } from '../merge/product-refs.js';
import { buildUnified, type MergedEntity, type UnifiedDelivery } from '../merge/unified.js';
import { migrate, type Db, type SqlValue } from './db.js';

/**
 * The consume stage's state: the latest version of every customer and product (merge tables), which
 * customers reference which products, the outbox of customers whose unified record may have changed
 * ("dirty"), and the delivery ledger (the last unified-record hash Analytics acknowledged per
 * customer).
 *
 * Crash safety rests on one rule: a merge and the dirty marks it causes commit in one transaction,
 * and a dirty mark is cleared only in the transaction that records the delivery (or dead-letter) in
 * the ledger. Whatever is killed when, a change is either not merged yet (Kafka redelivers it: the
 * offset is not committed) or merged and still dirty (the next drain delivers it).
 */

const SCHEMA_COMMON = (bigint: string) => [
  ...['consume_customers', 'consume_products'].map(
    (table) => `CREATE TABLE IF NOT EXISTS ${table} (
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
     )`,
  ),
  `CREATE TABLE IF NOT EXISTS consume_product_refs (
     product_id TEXT NOT NULL,
     customer_id TEXT NOT NULL,
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
];

const SCHEMA_SQLITE = [
  ...SCHEMA_COMMON('INTEGER'),
  'CREATE TABLE IF NOT EXISTS consume_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)',
  `INSERT INTO consume_counters (name, value) VALUES ('gen', 0) ON CONFLICT (name) DO NOTHING`,
];

const SCHEMA_POSTGRES = [...SCHEMA_COMMON('BIGINT'), 'CREATE SEQUENCE IF NOT EXISTS consume_gen_seq'];

export type MergeOutcome = 'applied' | 'unchanged' | 'stale';

export interface SourcePosition {
  topic: string;
  partition: number;
  offset: string;
}

/** One record to merge: an envelope, or a Kafka tombstone (a delete with no version of its own). */
export interface MergeItem {
  entity: Entity;
  id: string;
  envelope: Envelope | null;
  position: SourcePosition;
}

export interface MergeBatchResult {
  outcomes: MergeOutcome[];
  /** The outbox generation this batch's dirty marks carry; null when it marked nothing. */
  gen: number | null;
  /** Customers marked dirty (a product change marks every customer referencing it). */
  dirtied: number;
}

export interface Claim {
  customerId: string;
  gen: number;
}

export type Completion =
  | { customerId: string; gen: number; outcome: 'delivered'; hash: string; key: string; op: string }
  | { customerId: string; gen: number; outcome: 'dead-lettered'; hash: string }
  | { customerId: string; gen: number; outcome: 'skipped' };

export interface LedgerEntry {
  deliveredHash: string | null;
  deliveredOp: string | null;
  deadHash: string | null;
}

type EntityRow = {
  id: string;
  deleted: number | string;
  data: string | null;
  source_version: number | string | null;
  source_updated_at: string | null;
  updated_ms: number | string | null;
  content_hash: string;
  src_topic: string | null;
  src_partition: number | null;
  src_offset: string | null;
};

export interface MergeStoreOptions {
  /** Where customer records list product ids (see src/merge/product-refs.ts). */
  productRefPath?: string;
}

const TABLE: Record<Entity, string> = { customer: 'consume_customers', product: 'consume_products' };
const IN_CHUNK = 500;

function num(value: number | string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}

function toMerged(row: EntityRow): MergedEntity {
  return {
    id: row.id,
    deleted: Number(row.deleted) === 1,
    data: row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>),
    sourceVersion: num(row.source_version),
    sourceUpdatedAt: row.source_updated_at,
    contentHash: row.content_hash,
  };
}

function stampOf(row: EntityRow): VersionStamp {
  return {
    sourceVersion: num(row.source_version),
    updatedMs: num(row.updated_ms),
    deleted: Number(row.deleted) === 1,
  };
}

function chunks<T>(items: T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

const RETRYABLE_PG = new Set(['40P01', '40001']);
/** First key of the two-key advisory locks on product ids (the second is the id's hash). */
const PRODUCT_LOCK_SPACE = 7351002;

/** This process's identity in claims: host/pid/random, so a restarted process never mistakes old claims for its own. */
export function newOwnerId(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

function ownerIsDeadHere(owner: string): boolean {
  const [host, pidText] = owner.split('/');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class MergeStore {
  private readonly refPath;

  private constructor(
    readonly db: Db,
    options: MergeStoreOptions,
  ) {
    this.refPath = parseProductRefPath(options.productRefPath ?? DEFAULT_PRODUCT_REF_PATH);
  }

  static async open(db: Db, options: MergeStoreOptions = {}): Promise<MergeStore> {
    const store = new MergeStore(db, options);
    try {
      await migrate(db, db.kind === 'postgres' ? SCHEMA_POSTGRES : SCHEMA_SQLITE);
    } catch (err) {
      throw new StateError(`cannot create the consume tables in ${db.location}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return store;
  }

  productIdsOf(data: Record<string, unknown> | null): string[] {
    return extractProductIds(data, this.refPath);
  }

  private get forUpdate(): string {
    return this.db.kind === 'postgres' ? ' FOR UPDATE' : '';
  }

  /** Runs a transaction, retrying PostgreSQL deadlocks and serialization failures between instances. */
  private async tx<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(fn);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== undefined && RETRYABLE_PG.has(code) && attempt < 8) {
          await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50));
          continue;
        }
        throw err;
      }
    }
  }

  private async nextGen(tx: Db): Promise<number> {
    if (tx.kind === 'postgres') {
      const rows = await tx.query<{ g: string }>(`SELECT nextval('consume_gen_seq') AS g`);
      return Number(rows[0]?.g);
    }
    const rows = await tx.query<{ value: number }>(
      `UPDATE consume_counters SET value = value + 1 WHERE name = 'gen' RETURNING value`,
    );
    return Number(rows[0]?.value);
  }

  /**
   * Merges a batch in one transaction: each item replaces the stored version only when newer, and
   * every customer whose unified record may change is marked dirty in the same transaction.
   */
  async mergeBatch(items: MergeItem[]): Promise<MergeBatchResult> {
    if (items.length === 0) return { outcomes: [], gen: null, dirtied: 0 };
    return this.tx(async (tx) => {
      if (tx.kind === 'postgres') await this.lockProductKeys(tx, items);
      const customers = new Set<string>();
      const products = new Set<string>();
      const outcomes: MergeOutcome[] = [];
      for (const item of items) {
        const outcome = await this.mergeOne(tx, item);
        outcomes.push(outcome);
        if (outcome === 'applied') (item.entity === 'customer' ? customers : products).add(item.id);
      }
      if (customers.size === 0 && products.size === 0) return { outcomes, gen: null, dirtied: 0 };
      const gen = await this.nextGen(tx);
      const now = new Date().toISOString();
      let dirtied = 0;
      // Sorted, so two instances marking overlapping sets lock rows in the same order.
      for (const id of [...customers].sort()) {
        const { changes } = await tx.run(
          `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (customer_id) DO UPDATE SET gen = excluded.gen, marked_at = excluded.marked_at`,
          [id, gen, gen, now],
        );
        dirtied += changes;
      }
      for (const id of [...products].sort()) {
        // A changed or newly known product re-delivers every customer referencing it; that includes
        // customers that listed it as unresolved until now.
        const { changes } = await tx.run(
          `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at)
           SELECT customer_id, ?, ?, ? FROM consume_product_refs WHERE product_id = ?
           ON CONFLICT (customer_id) DO UPDATE SET gen = excluded.gen, marked_at = excluded.marked_at`,
          [gen, gen, now, id],
        );
        dirtied += changes;
      }
      return { outcomes, gen, dirtied };
    });
  }

  /**
   * PostgreSQL only (SQLite runs one writer at a time). Without this, instance A could merge a
   * customer referencing product P and deliver it while instance B merges P: B's "mark every
   * customer referencing P" does not see A's uncommitted reference, A's build does not see B's
   * uncommitted product, and the customer would stay delivered with P unresolved. A product merge
   * takes P's key exclusively, a customer merge takes its references' keys shared, all in one
   * sorted statement at the start of the transaction, so the two serialise.
   */
  private async lockProductKeys(tx: Db, items: MergeItem[]): Promise<void> {
    const keys = new Map<string, boolean>();
    for (const item of items) {
      if (item.entity === 'product') keys.set(item.id, true);
      else if (item.envelope?.op === 'upsert') {
        for (const id of this.productIdsOf(item.envelope.data)) if (!keys.has(id)) keys.set(id, false);
      }
    }
    if (keys.size === 0) return;
    const list = JSON.stringify([...keys].map(([id, exclusive]) => ({ id, x: exclusive })));
    await tx.query(
      `SELECT CASE WHEN x THEN pg_advisory_xact_lock(${PRODUCT_LOCK_SPACE}, h)::text
                   ELSE pg_advisory_xact_lock_shared(${PRODUCT_LOCK_SPACE}, h)::text END AS locked
       FROM (SELECT hashtext(e->>'id') AS h, bool_or((e->>'x')::boolean) AS x
             FROM json_array_elements(?::json) AS e GROUP BY 1 ORDER BY 1) AS k`,
      [list],
    );
  }

  private async mergeOne(tx: Db, item: MergeItem): Promise<MergeOutcome> {
    const table = TABLE[item.entity];
    for (;;) {
      const rows = await tx.query<EntityRow>(`SELECT * FROM ${table} WHERE id = ?${this.forUpdate}`, [
        item.id,
      ]);
      const row = rows[0];
      const next = this.nextState(item, row);
      if (next === 'unchanged' || next === 'stale') return next;
      const params: SqlValue[] = [
        next.deleted ? 1 : 0,
        next.data === null ? null : JSON.stringify(next.data),
        next.sourceVersion,
        next.sourceUpdatedAt,
        next.updatedMs,
        next.contentHash,
        item.position.topic,
        item.position.partition,
        item.position.offset,
        new Date().toISOString(),
      ];
      if (row) {
        await tx.run(
          `UPDATE ${table} SET deleted = ?, data = ?, source_version = ?, source_updated_at = ?, updated_ms = ?,
             content_hash = ?, src_topic = ?, src_partition = ?, src_offset = ?, merged_at = ? WHERE id = ?`,
          [...params, item.id],
        );
      } else {
        const { changes } = await tx.run(
          `INSERT INTO ${table} (deleted, data, source_version, source_updated_at, updated_ms, content_hash,
             src_topic, src_partition, src_offset, merged_at, id) VALUES (${placeholders(11)})
           ON CONFLICT (id) DO NOTHING`,
          [...params, item.id],
        );
        // Another instance inserted it between our read and write: compare against that version.
        if (changes === 0) continue;
      }
      if (item.entity === 'customer') {
        await tx.run('DELETE FROM consume_product_refs WHERE customer_id = ?', [item.id]);
        if (!next.deleted) {
          for (const productId of this.productIdsOf(next.data)) {
            await tx.run(
              'INSERT INTO consume_product_refs (product_id, customer_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
              [productId, item.id],
            );
          }
        }
      }
      return 'applied';
    }
  }

  /** What the row should become, or why it stays as it is. */
  private nextState(
    item: MergeItem,
    row: EntityRow | undefined,
  ):
    | 'unchanged'
    | 'stale'
    | {
        deleted: boolean;
        data: Record<string, unknown> | null;
        sourceVersion: number | null;
        sourceUpdatedAt: string | null;
        updatedMs: number | null;
        contentHash: string;
      } {
    const storedData = row?.data ? (JSON.parse(row.data) as Record<string, unknown>) : null;
    const envelope = item.envelope;
    if (envelope === null) {
      // A tombstone deletes whatever version is stored; it keeps that version (so older upserts
      // replayed after it stay stale) and the last known data (a deleted product stays describable).
      if (row && Number(row.deleted) === 1) return 'unchanged';
      return {
        deleted: true,
        data: storedData,
        sourceVersion: row ? num(row.source_version) : null,
        sourceUpdatedAt: row?.source_updated_at ?? null,
        updatedMs: row ? num(row.updated_ms) : null,
        contentHash: contentHashOf('delete', null),
      };
    }
    const deleted = envelope.op === 'delete';
    const incoming: VersionStamp = {
      sourceVersion: envelope.sourceVersion ?? null,
      updatedMs: parseUpdatedMs(envelope.sourceUpdatedAt),
      deleted,
    };
    const next = {
      deleted,
      data: deleted ? (envelope.data ?? storedData) : envelope.data,
      sourceVersion: incoming.sourceVersion,
      sourceUpdatedAt: envelope.sourceUpdatedAt,
      updatedMs: incoming.updatedMs,
      contentHash: envelope.contentHash,
    };
    if (!row) return next;
    if (isUnversioned(incoming)) {
      // Nothing to order by: Kafka order decides, and an identical record changes nothing.
      return row.content_hash === envelope.contentHash && Number(row.deleted) === (deleted ? 1 : 0)
        ? 'unchanged'
        : next;
    }
    const comparison = compareVersions(incoming, stampOf(row));
    if (comparison === 'newer') return next;
    return comparison === 'same' ? 'unchanged' : 'stale';
  }

  /**
   * Claims up to `limit` dirty customers for delivery: unclaimed ones, ones whose lease ran out, and
   * this owner's own (left from an interrupted drain). PostgreSQL skips rows another instance is
   * claiming right now.
   */
  async claim(owner: string, limit: number, leaseMs: number): Promise<Claim[]> {
    const now = Date.now();
    const skipLocked = this.db.kind === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows = await this.tx((tx) =>
      tx.query<{ customer_id: string; gen: number | string }>(
        `UPDATE consume_dirty SET claimed_by = ?, claim_until = ?
         WHERE customer_id IN (
           SELECT customer_id FROM consume_dirty
           WHERE claimed_by IS NULL OR claimed_by = ? OR claim_until < ?
           ORDER BY first_gen, customer_id LIMIT ?${skipLocked})
         RETURNING customer_id, gen`,
        [owner, now + leaseMs, owner, now, limit],
      ),
    );
    return rows
      .map((r) => ({ customerId: r.customer_id, gen: Number(r.gen) }))
      .sort((a, b) => (a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0));
  }

  /** Keeps this owner's claims alive during a long delivery. */
  async renew(owner: string, leaseMs: number): Promise<void> {
    await this.db.run('UPDATE consume_dirty SET claim_until = ? WHERE claimed_by = ?', [
      Date.now() + leaseMs,
      owner,
    ]);
  }

  /** Gives this owner's claims back (after a failed delivery), so any instance can take them at once. */
  async release(owner: string): Promise<void> {
    await this.db.run('UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?', [
      owner,
    ]);
  }

  /**
   * Frees claims held by processes on this host that no longer exist (a SIGKILLed consumer), so a
   * rerun does not wait for their leases to run out. Claims from other hosts wait for the lease.
   */
  async releaseDeadOwners(owner: string): Promise<number> {
    const rows = await this.db.query<{ claimed_by: string }>(
      'SELECT DISTINCT claimed_by FROM consume_dirty WHERE claimed_by IS NOT NULL AND claimed_by <> ? AND claim_until >= ?',
      [owner, Date.now()],
    );
    let released = 0;
    for (const { claimed_by: other } of rows) {
      if (!ownerIsDeadHere(other)) continue;
      const { changes } = await this.db.run(
        'UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?',
        [other],
      );
      released += changes;
    }
    return released;
  }

  /**
   * Records what happened to claimed customers and clears their dirty marks, in one transaction.
   * A customer re-marked since it was claimed (its gen moved on) stays dirty and is released, so
   * the newer change is delivered too.
   */
  async complete(owner: string, completions: Completion[]): Promise<void> {
    if (completions.length === 0) return;
    const now = new Date().toISOString();
    const sorted = [...completions].sort((a, b) =>
      a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0,
    );
    await this.tx(async (tx) => {
      for (const c of sorted) {
        if (c.outcome === 'delivered') {
          await tx.run(
            `INSERT INTO consume_ledger (customer_id, delivered_hash, delivered_key, delivered_op, delivered_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (customer_id) DO UPDATE SET delivered_hash = excluded.delivered_hash,
               delivered_key = excluded.delivered_key, delivered_op = excluded.delivered_op,
               delivered_at = excluded.delivered_at`,
            [c.customerId, c.hash, c.key, c.op, now],
          );
        } else if (c.outcome === 'dead-lettered') {
          await tx.run(
            `INSERT INTO consume_ledger (customer_id, dead_hash, dead_at) VALUES (?, ?, ?)
             ON CONFLICT (customer_id) DO UPDATE SET dead_hash = excluded.dead_hash, dead_at = excluded.dead_at`,
            [c.customerId, c.hash, now],
          );
        }
        const { changes } = await tx.run('DELETE FROM consume_dirty WHERE customer_id = ? AND gen = ?', [
          c.customerId,
          c.gen,
        ]);
        if (changes === 0) {
          await tx.run(
            'UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL WHERE customer_id = ? AND claimed_by = ?',
            [c.customerId, owner],
          );
        }
      }
    });
  }

  /** Dirty customers marked at or before `gen` (by anyone) that are not delivered yet. */
  async pendingUpTo(gen: number): Promise<number> {
    const rows = await this.db.query<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM consume_dirty WHERE first_gen <= ?',
      [gen],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The newest outbox generation handed out so far (0 when none). */
  async maxGen(): Promise<number> {
    const rows = await this.db.query<{ g: number | string | null }>(
      'SELECT MAX(gen) AS g FROM consume_dirty',
    );
    return Number(rows[0]?.g ?? 0);
  }

  async pendingTotal(): Promise<number> {
    const rows = await this.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM consume_dirty');
    return Number(rows[0]?.n ?? 0);
  }

  async ledger(customerIds: string[]): Promise<Map<string, LedgerEntry>> {
    const out = new Map<string, LedgerEntry>();
    for (const part of chunks(customerIds)) {
      const rows = await this.db.query<{
        customer_id: string;
        delivered_hash: string | null;
        delivered_op: string | null;
        dead_hash: string | null;
      }>(
        `SELECT customer_id, delivered_hash, delivered_op, dead_hash FROM consume_ledger
         WHERE customer_id IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) {
        out.set(r.customer_id, {
          deliveredHash: r.delivered_hash,
          deliveredOp: r.delivered_op,
          deadHash: r.dead_hash,
        });
      }
    }
    return out;
  }

  private async loadEntities(entity: Entity, ids: string[]): Promise<Map<string, EntityRow>> {
    const out = new Map<string, EntityRow>();
    for (const part of chunks([...new Set(ids)])) {
      const rows = await this.db.query<EntityRow>(
        `SELECT * FROM ${TABLE[entity]} WHERE id IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) out.set(r.id, r);
    }
    return out;
  }

  /** Builds the current unified record (or delete) of each customer from the merge tables. */
  async buildUnified(
    customerIds: string[],
  ): Promise<Map<string, { delivery: UnifiedDelivery; source: SourcePosition | null }>> {
    const customers = await this.loadEntities('customer', customerIds);
    const refs = new Map<string, string[]>();
    for (const [id, row] of customers) {
      if (Number(row.deleted) !== 1 && row.data !== null) {
        refs.set(id, this.productIdsOf(JSON.parse(row.data) as Record<string, unknown>));
      }
    }
    const productRows = await this.loadEntities('product', [...refs.values()].flat());
    const products = new Map<string, MergedEntity>();
    for (const [id, row] of productRows) products.set(id, toMerged(row));
    const out = new Map<string, { delivery: UnifiedDelivery; source: SourcePosition | null }>();
    for (const id of customerIds) {
      const row = customers.get(id);
      const delivery = buildUnified(id, row ? toMerged(row) : undefined, refs.get(id) ?? [], products);
      const source =
        row && row.src_topic !== null && row.src_partition !== null && row.src_offset !== null
          ? { topic: row.src_topic, partition: Number(row.src_partition), offset: row.src_offset }
          : null;
      out.set(id, { delivery, source });
    }
    return out;
  }

  /**
   * The current unified view, customer by customer in id order, `pageSize` at a time (bounded
   * memory). Deleted customers are left out. For export and checks.
   */
  async *unifiedView(pageSize = 500): AsyncGenerator<UnifiedDelivery> {
    let after = '';
    for (;;) {
      const rows = await this.db.query<{ id: string }>(
        'SELECT id FROM consume_customers WHERE id > ? AND deleted = 0 ORDER BY id LIMIT ?',
        [after, pageSize],
      );
      if (rows.length === 0) return;
      const ids = rows.map((r) => r.id);
      const built = await this.buildUnified(ids);
      for (const id of ids) {
        const entry = built.get(id);
        if (entry && entry.delivery.sink.op === 'upsert') yield entry.delivery;
      }
      after = ids[ids.length - 1] as string;
    }
  }

  async counts(): Promise<{ customers: number; products: number; dirty: number; delivered: number }> {
    const one = async (sql: string) => Number((await this.db.query<{ n: number | string }>(sql))[0]?.n ?? 0);
    return {
      customers: await one('SELECT COUNT(*) AS n FROM consume_customers WHERE deleted = 0'),
      products: await one('SELECT COUNT(*) AS n FROM consume_products WHERE deleted = 0'),
      dirty: await one('SELECT COUNT(*) AS n FROM consume_dirty'),
      delivered: await one('SELECT COUNT(*) AS n FROM consume_ledger WHERE delivered_hash IS NOT NULL'),
    };
  }
}
