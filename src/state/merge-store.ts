import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { StateError } from '../errors.js';
import { contentHashOf, type Entity, type Envelope } from '../records/envelope.js';
import { compareVersions, isUnversioned, parseUpdatedMs, type VersionStamp } from '../merge/version.js';
import {
  extractProductIds,
  parseProductRefPath,
  withEnvelopeRefs,
  withoutEnvelopeRefs,
  DEFAULT_PRODUCT_REF_PATH,
} from '../merge/product-refs.js';
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
const ENTITY_COLUMNS = [
  'id',
  'deleted',
  'data',
  'source_version',
  'source_updated_at',
  'updated_ms',
  'content_hash',
  'src_topic',
  'src_partition',
  'src_offset',
  'merged_at',
];

/** A row a merge changes, and whether it was stored before. */
interface Changed {
  row: EntityRow;
  existed: boolean;
}
const IN_CHUNK = 500;

function num(value: number | string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}

function toMerged(row: EntityRow): MergedEntity {
  return {
    id: row.id,
    deleted: Number(row.deleted) === 1,
    data: row.data === null ? null : withoutEnvelopeRefs(JSON.parse(row.data) as Record<string, unknown>),
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

/** Our own signal that a transaction lost an insert race and must run again. */
const CONCURRENT_INSERT = 'SYNCCTL_CONCURRENT_INSERT';
const RETRYABLE = new Set(['40P01', '40001', CONCURRENT_INSERT]);
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

  /** Runs a transaction, retrying PostgreSQL deadlocks and serialization failures between instances. */
  private async tx<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(fn);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== undefined && RETRYABLE.has(code) && attempt < 8) {
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
   *
   * Set-based: the stored rows are read once (locked on PostgreSQL), the items applied in order in
   * memory (several versions of one entity in a batch are fine), and the final states, references
   * and dirty marks written with multi-row statements.
   */
  async mergeBatch(items: MergeItem[]): Promise<MergeBatchResult> {
    if (items.length === 0) return { outcomes: [], gen: null, dirtied: 0 };
    return this.tx(async (tx) => {
      if (tx.kind === 'postgres') await this.lockProductKeys(tx, items);
      const outcomes = new Array<MergeOutcome>(items.length);
      const changed: Record<Entity, Map<string, Changed>> = { customer: new Map(), product: new Map() };
      for (const entity of ['customer', 'product'] as const) {
        const indexes = items.map((item, i) => (item.entity === entity ? i : -1)).filter((i) => i >= 0);
        if (indexes.length === 0) continue;
        const stored = await this.loadEntities(
          entity,
          indexes.map((i) => (items[i] as MergeItem).id),
          tx,
          true,
        );
        const current = new Map(stored);
        for (const i of indexes) {
          const item = items[i] as MergeItem;
          const next = this.nextState(item, current.get(item.id));
          if (next === 'unchanged' || next === 'stale') {
            outcomes[i] = next;
            continue;
          }
          outcomes[i] = 'applied';
          const row: EntityRow = {
            id: item.id,
            deleted: next.deleted ? 1 : 0,
            data: next.data === null ? null : JSON.stringify(next.data),
            source_version: next.sourceVersion,
            source_updated_at: next.sourceUpdatedAt,
            updated_ms: next.updatedMs,
            content_hash: next.contentHash,
            src_topic: item.position.topic,
            src_partition: item.position.partition,
            src_offset: item.position.offset,
          };
          current.set(item.id, row);
          changed[entity].set(item.id, { row, existed: stored.has(item.id) });
        }
        await this.writeEntities(tx, entity, changed[entity]);
      }
      await this.writeRefs(tx, changed.customer);
      const customers = [...changed.customer.keys()].sort();
      const products = [...changed.product.keys()].sort();
      if (customers.length === 0 && products.length === 0) return { outcomes, gen: null, dirtied: 0 };
      const gen = await this.nextGen(tx);
      const now = new Date().toISOString();
      let dirtied = 0;
      // Sorted, so two instances marking overlapping sets lock rows in the same order.
      for (const part of chunks(customers)) {
        const { changes } = await tx.run(
          `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at)
           VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')}
           ON CONFLICT (customer_id) DO UPDATE SET gen = excluded.gen, marked_at = excluded.marked_at`,
          part.flatMap((id) => [id, gen, gen, now]),
        );
        dirtied += changes;
      }
      for (const part of chunks(products)) {
        // A changed or newly known product re-delivers every customer referencing it; that includes
        // customers that listed it as unresolved until now.
        const { changes } = await tx.run(
          `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at)
           SELECT customer_id, ${placeholders(3)} FROM (
             SELECT DISTINCT customer_id FROM consume_product_refs WHERE product_id IN (${placeholders(part.length)})
           ) AS referencing ORDER BY customer_id
           ON CONFLICT (customer_id) DO UPDATE SET gen = excluded.gen, marked_at = excluded.marked_at`,
          [gen, gen, now, ...part],
        );
        dirtied += changes;
      }
      return { outcomes, gen, dirtied };
    });
  }

  private async writeEntities(tx: Db, entity: Entity, changed: Map<string, Changed>): Promise<void> {
    const table = TABLE[entity];
    const now = new Date().toISOString();
    const values = (row: EntityRow): SqlValue[] => [
      row.id,
      Number(row.deleted),
      row.data,
      num(row.source_version),
      row.source_updated_at,
      num(row.updated_ms),
      row.content_hash,
      row.src_topic,
      row.src_partition,
      row.src_offset,
      now,
    ];
    const tuple = `(${placeholders(ENTITY_COLUMNS.length)})`;
    const sorted = [...changed.values()].sort((a, b) => (a.row.id < b.row.id ? -1 : 1));
    // Rows read (and, on PostgreSQL, locked) above: overwrite them.
    for (const part of chunks(
      sorted.filter((c) => c.existed),
      200,
    )) {
      await tx.run(
        `INSERT INTO ${table} (${ENTITY_COLUMNS.join(', ')}) VALUES ${part.map(() => tuple).join(', ')}
         ON CONFLICT (id) DO UPDATE SET ${ENTITY_COLUMNS.slice(1)
           .map((c) => `${c} = excluded.${c}`)
           .join(', ')}`,
        part.flatMap((c) => values(c.row)),
      );
    }
    // Rows that did not exist: another instance may have inserted one since. Then the whole
    // transaction runs again and merges against that version instead of overwriting it.
    for (const part of chunks(
      sorted.filter((c) => !c.existed),
      200,
    )) {
      const inserted = await tx.query<{ id: string }>(
        `INSERT INTO ${table} (${ENTITY_COLUMNS.join(', ')}) VALUES ${part.map(() => tuple).join(', ')}
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        part.flatMap((c) => values(c.row)),
      );
      if (inserted.length !== part.length) {
        throw Object.assign(new Error(`a ${entity} was inserted concurrently by another instance`), {
          code: CONCURRENT_INSERT,
        });
      }
    }
  }

  /** Rewrites the product references of the changed customers (none for deleted ones). */
  private async writeRefs(tx: Db, changed: Map<string, Changed>): Promise<void> {
    const ids = [...changed.keys()].sort();
    for (const part of chunks(ids)) {
      await tx.run(
        `DELETE FROM consume_product_refs WHERE customer_id IN (${placeholders(part.length)})`,
        part,
      );
    }
    const pairs: [string, string][] = [];
    for (const id of ids) {
      const { row } = changed.get(id) as Changed;
      if (Number(row.deleted) === 1 || row.data === null) continue;
      for (const productId of this.productIdsOf(JSON.parse(row.data) as Record<string, unknown>)) {
        pairs.push([productId, id]);
      }
    }
    for (const part of chunks(pairs)) {
      await tx.run(
        `INSERT INTO consume_product_refs (product_id, customer_id) VALUES ${part.map(() => '(?, ?)').join(', ')}
         ON CONFLICT DO NOTHING`,
        part.flat(),
      );
    }
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
        for (const id of this.productIdsOf(withEnvelopeRefs(item.envelope)))
          if (!keys.has(id)) keys.set(id, false);
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
      data: deleted ? (envelope.data ?? storedData) : withEnvelopeRefs(envelope),
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
      const delivered = sorted.filter((c) => c.outcome === 'delivered');
      for (const part of chunks(delivered, 200)) {
        await tx.run(
          `INSERT INTO consume_ledger (customer_id, delivered_hash, delivered_key, delivered_op, delivered_at)
           VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
           ON CONFLICT (customer_id) DO UPDATE SET delivered_hash = excluded.delivered_hash,
             delivered_key = excluded.delivered_key, delivered_op = excluded.delivered_op,
             delivered_at = excluded.delivered_at`,
          part.flatMap((c) => [c.customerId, c.hash, c.key, c.op, now]),
        );
      }
      const dead = sorted.filter((c) => c.outcome === 'dead-lettered');
      for (const part of chunks(dead, 200)) {
        await tx.run(
          `INSERT INTO consume_ledger (customer_id, dead_hash, dead_at)
           VALUES ${part.map(() => '(?, ?, ?)').join(', ')}
           ON CONFLICT (customer_id) DO UPDATE SET dead_hash = excluded.dead_hash, dead_at = excluded.dead_at`,
          part.flatMap((c) => [c.customerId, c.hash, now]),
        );
      }
      for (const part of chunks(sorted, 200)) {
        const cleared = await tx.query<{ customer_id: string }>(
          `DELETE FROM consume_dirty WHERE ${part.map(() => '(customer_id = ? AND gen = ?)').join(' OR ')}
           RETURNING customer_id`,
          part.flatMap((c) => [c.customerId, c.gen]),
        );
        const gone = new Set(cleared.map((r) => r.customer_id));
        const remarked = part.filter((c) => !gone.has(c.customerId)).map((c) => c.customerId);
        if (remarked.length > 0) {
          await tx.run(
            `UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL
             WHERE claimed_by = ? AND customer_id IN (${placeholders(remarked.length)})`,
            [owner, ...remarked],
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

  private async loadEntities(
    entity: Entity,
    ids: string[],
    db: Db = this.db,
    lock = false,
  ): Promise<Map<string, EntityRow>> {
    const out = new Map<string, EntityRow>();
    const suffix = lock && db.kind === 'postgres' ? ' ORDER BY id FOR UPDATE' : '';
    for (const part of chunks([...new Set(ids)].sort())) {
      const rows = await db.query<EntityRow>(
        `SELECT * FROM ${TABLE[entity]} WHERE id IN (${placeholders(part.length)})${suffix}`,
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
