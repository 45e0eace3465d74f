import { buildUnified, type MergedEntity, type UnifiedDelivery } from '../merge/unified.js';
import type { Db } from './db.js';
import { toMerged, type SourcePosition } from './entity-store.js';
import { chunks, placeholders } from './sql.js';

/**
 * The read side of the merge tables: each customer joined with the products it references (through
 * the stored consume_product_refs, in the customer's order), built into the unified record.
 */

export interface BuiltCustomer {
  delivery: UnifiedDelivery;
  /** Where the customer's current version was read from (for dead letters); null if unknown. */
  source: SourcePosition | null;
}

type JoinedRow = {
  id: string;
  deleted: number | string;
  data: string | null;
  source_version: number | string | null;
  source_updated_at: string | null;
  content_hash: string;
  src_topic: string | null;
  src_partition: number | null;
  src_offset: string | null;
  ref_id: string | null;
  p_id: string | null;
  p_deleted: number | string | null;
  p_data: string | null;
  p_source_version: number | string | null;
  p_source_updated_at: string | null;
  p_content_hash: string | null;
};

// One statement, so a customer, its references and their products come from one snapshot even while
// another instance merges (separate reads could pair an old customer with its new references).
const JOINED = (n: number) => `
  SELECT c.id, c.deleted, c.data, c.source_version, c.source_updated_at, c.content_hash,
         c.src_topic, c.src_partition, c.src_offset,
         r.product_id AS ref_id,
         p.id AS p_id, p.deleted AS p_deleted, p.data AS p_data, p.source_version AS p_source_version,
         p.source_updated_at AS p_source_updated_at, p.content_hash AS p_content_hash
  FROM consume_customers c
  LEFT JOIN consume_product_refs r ON r.customer_id = c.id
  LEFT JOIN consume_products p ON p.id = r.product_id
  WHERE c.id IN (${placeholders(n)})
  ORDER BY c.id, r.pos, r.product_id`;

export class ReadModel {
  constructor(readonly db: Db) {}

  /** Builds the current unified record (or delete) of each customer from the merge tables. */
  async buildUnified(customerIds: string[]): Promise<Map<string, BuiltCustomer>> {
    const customers = new Map<string, { row: JoinedRow; refs: string[] }>();
    const products = new Map<string, MergedEntity>();
    for (const part of chunks([...new Set(customerIds)])) {
      for (const row of await this.db.query<JoinedRow>(JOINED(part.length), part)) {
        let customer = customers.get(row.id);
        if (!customer) {
          customer = { row, refs: [] };
          customers.set(row.id, customer);
        }
        if (row.ref_id === null) continue;
        customer.refs.push(row.ref_id);
        if (row.p_id !== null && row.p_content_hash !== null && !products.has(row.p_id)) {
          products.set(
            row.p_id,
            toMerged({
              id: row.p_id,
              deleted: row.p_deleted ?? 0,
              data: row.p_data,
              source_version: row.p_source_version,
              source_updated_at: row.p_source_updated_at,
              content_hash: row.p_content_hash,
            }),
          );
        }
      }
    }
    const out = new Map<string, BuiltCustomer>();
    for (const id of customerIds) {
      const found = customers.get(id);
      const row = found?.row;
      const delivery = buildUnified(id, row ? toMerged(row) : undefined, found?.refs ?? [], products);
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
}
