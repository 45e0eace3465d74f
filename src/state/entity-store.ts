import { contentHashOf, type Entity, type Envelope } from '../records/envelope.js';
import { compareVersions, isUnversioned, parseUpdatedMs, type VersionStamp } from '../merge/version.js';
import {
  extractProductIds,
  parseProductRefPath,
  withEnvelopeRefs,
  withoutEnvelopeRefs,
} from '../merge/product-refs.js';
import type { MergedEntity } from '../merge/unified.js';
import type { Db, SqlValue } from './db.js';
import { insertRefs } from './merge-schema.js';
import type { Outbox } from './outbox.js';
import { byText, chunks, CONCURRENT_INSERT, num, placeholders, retryingTransaction } from './sql.js';

/**
 * The merge tables: the latest version of every customer and product, and the product references
 * of each customer (consume_product_refs, in the order the customer lists them).
 *
 * A merge and the dirty marks it causes commit in one transaction: whatever is killed when, a change
 * is either not merged yet (Kafka redelivers it: the offset is not committed) or merged and still
 * dirty (the next drain delivers it).
 */

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
  /** The outbox generation this batch's dirty marks carry; null when it changed nothing. */
  gen: number | null;
  /** Customers marked dirty (a product change marks every customer referencing it). */
  dirtied: number;
}

export type EntityRow = {
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

export const ENTITY_TABLE: Record<Entity, string> = {
  customer: 'consume_customers',
  product: 'consume_products',
};
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

/** First key of the two-key advisory locks on product ids (the second is the id's hash). */
const PRODUCT_LOCK_SPACE = 7351002;

export function toMerged(
  row: Omit<EntityRow, 'updated_ms' | 'src_topic' | 'src_partition' | 'src_offset'>,
): MergedEntity {
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

/** A row a merge changes, and whether it was stored before. */
interface Changed {
  row: EntityRow;
  existed: boolean;
}

interface NextState {
  deleted: boolean;
  data: Record<string, unknown> | null;
  sourceVersion: number | null;
  sourceUpdatedAt: string | null;
  updatedMs: number | null;
  contentHash: string;
}

export class EntityStore {
  private readonly refPath;

  constructor(
    readonly db: Db,
    private readonly outbox: Outbox,
    productRefPath: string,
  ) {
    this.refPath = parseProductRefPath(productRefPath);
  }

  /** The product ids a customer record lists, by the configured --product-ref-path. */
  productIdsOf(data: Record<string, unknown> | null): string[] {
    return extractProductIds(data, this.refPath);
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
    return retryingTransaction(this.db, async (tx) => {
      if (tx.kind === 'postgres') await this.lockProductKeys(tx, items);
      const outcomes = new Array<MergeOutcome>(items.length);
      const changed: Record<Entity, Map<string, Changed>> = { customer: new Map(), product: new Map() };
      for (const entity of ['customer', 'product'] as const) {
        const indexes = items.map((item, i) => (item.entity === entity ? i : -1)).filter((i) => i >= 0);
        if (indexes.length === 0) continue;
        const stored = await this.load(
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
      if (changed.customer.size === 0 && changed.product.size === 0)
        return { outcomes, gen: null, dirtied: 0 };
      // A changed or newly known product re-delivers every customer referencing it; that includes
      // customers that listed it as unresolved until now.
      const referencing = await this.customersReferencing(tx, [...changed.product.keys()].sort(byText));
      const { gen, dirtied } = await this.outbox.markDirty(tx, [...changed.customer.keys(), ...referencing]);
      return { outcomes, gen, dirtied };
    });
  }

  private async customersReferencing(tx: Db, productIds: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const part of chunks(productIds)) {
      const rows = await tx.query<{ customer_id: string }>(
        `SELECT DISTINCT customer_id FROM consume_product_refs WHERE product_id IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) out.push(r.customer_id);
    }
    return out;
  }

  private async writeEntities(tx: Db, entity: Entity, changed: Map<string, Changed>): Promise<void> {
    const table = ENTITY_TABLE[entity];
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
    const sorted = [...changed.values()].sort((a, b) => byText(a.row.id, b.row.id));
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

  /** Rewrites the product references of the changed customers, in their order (none for deleted ones). */
  private async writeRefs(tx: Db, changed: Map<string, Changed>): Promise<void> {
    const ids = [...changed.keys()].sort(byText);
    for (const part of chunks(ids)) {
      await tx.run(
        `DELETE FROM consume_product_refs WHERE customer_id IN (${placeholders(part.length)})`,
        part,
      );
    }
    const rows: [string, string, number][] = [];
    for (const id of ids) {
      const { row } = changed.get(id) as Changed;
      if (Number(row.deleted) === 1 || row.data === null) continue;
      this.productIdsOf(JSON.parse(row.data) as Record<string, unknown>).forEach((productId, pos) =>
        rows.push([productId, id, pos]),
      );
    }
    await insertRefs(tx, rows);
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
  private nextState(item: MergeItem, row: EntityRow | undefined): 'unchanged' | 'stale' | NextState {
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

  /** The stored rows of these entities (locked for update on PostgreSQL when `lock`). */
  async load(entity: Entity, ids: string[], db: Db = this.db, lock = false): Promise<Map<string, EntityRow>> {
    const out = new Map<string, EntityRow>();
    const suffix = lock && db.kind === 'postgres' ? ' ORDER BY id FOR UPDATE' : '';
    for (const part of chunks([...new Set(ids)].sort(byText))) {
      const rows = await db.query<EntityRow>(
        `SELECT * FROM ${ENTITY_TABLE[entity]} WHERE id IN (${placeholders(part.length)})${suffix}`,
        part,
      );
      for (const r of rows) out.set(r.id, r);
    }
    return out;
  }

  /** The stored product references of these customers, each in the order its record lists them. */
  async productRefs(customerIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const part of chunks([...new Set(customerIds)])) {
      const rows = await this.db.query<{ customer_id: string; product_id: string }>(
        `SELECT customer_id, product_id FROM consume_product_refs
         WHERE customer_id IN (${placeholders(part.length)}) ORDER BY customer_id, pos, product_id`,
        part,
      );
      for (const r of rows) {
        const list = out.get(r.customer_id);
        if (list) list.push(r.product_id);
        else out.set(r.customer_id, [r.product_id]);
      }
    }
    return out;
  }

  async counts(): Promise<{ customers: number; products: number }> {
    const one = async (sql: string) => Number((await this.db.query<{ n: number | string }>(sql))[0]?.n ?? 0);
    return {
      customers: await one('SELECT COUNT(*) AS n FROM consume_customers WHERE deleted = 0'),
      products: await one('SELECT COUNT(*) AS n FROM consume_products WHERE deleted = 0'),
    };
  }
}
