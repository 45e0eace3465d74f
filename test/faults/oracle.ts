/**
 * The fault suite's judge: an independent join of the fixture source data (the CRM's customers
 * and the Inventory's products as the fixtures hold them now) compared with what the Analytics
 * fixture stored. Nothing here imports syncctl code, so a bug in the merge cannot hide itself.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Customer } from '../../fixtures/data/customers.js';
import type { Product } from '../../fixtures/data/products.js';

/** One entry of Analytics' current view (`GET /v1/records`). */
export interface AnalyticsRecord {
  customerId: string;
  key: string;
  record: unknown;
}

/** One stored write (`GET /v1/log?full=1`). */
export interface AnalyticsWrite {
  key: string;
  customerId: string;
  op: 'upsert' | 'delete';
  record?: unknown;
}

export interface OracleVerdict {
  expected: number;
  delivered: number;
  /** Customer ids the join has and Analytics lacks, or holds with other content. */
  missing: string[];
  /** Record keys written more than once, and customers given the same content twice in a row. */
  storedTwice: string[];
  /** Customer ids Analytics holds that the join does not (e.g. an archived customer still there). */
  unexpected: string[];
}

interface ExpectedProduct {
  productId: string;
  discontinued: boolean;
  name: string;
  sku: string;
  version: string;
}

interface Expected {
  customer: unknown;
  products: ExpectedProduct[];
  unresolvedProductIds: string[];
}

/** What Analytics must hold: one record per live customer, its references resolved by hand. */
export function expectedJoin(
  customers: Iterable<Customer>,
  products: Iterable<Product>,
): Map<string, Expected> {
  const byId = new Map<string, Product>();
  for (const p of products) byId.set(p.id, p);
  const view = new Map<string, Expected>();
  for (const c of customers) {
    if (c.archived) continue;
    const refs = [...new Set(c.productIds)];
    view.set(c.id, {
      // Analytics receives JSON: absent optional fields and undefined values vanish the same way.
      customer: JSON.parse(JSON.stringify(c)),
      products: refs
        .filter((id) => byId.has(id))
        .map((id) => {
          const p = byId.get(id) as Product;
          return {
            productId: id,
            discontinued: p.discontinued,
            name: p.name,
            sku: p.sku,
            version: String(p.version),
          };
        }),
      unresolvedProductIds: refs.filter((id) => !byId.has(id)),
    });
  }
  return view;
}

function storedShape(record: unknown): Expected | undefined {
  if (record === null || typeof record !== 'object') return undefined;
  const r = record as {
    customer?: unknown;
    products?: { productId: string; discontinued: boolean; product: Record<string, unknown> | null }[];
    unresolvedProductIds?: string[];
  };
  if (!Array.isArray(r.products) || !Array.isArray(r.unresolvedProductIds)) return undefined;
  return {
    customer: r.customer,
    products: r.products.map((p) => ({
      productId: p.productId,
      discontinued: p.discontinued,
      name: String(p.product?.name),
      sku: String(p.product?.sku),
      version: String(p.product?.version),
    })),
    unresolvedProductIds: r.unresolvedProductIds,
  };
}

/** Compares the join with Analytics' current view and write log. */
export function judge(
  expected: Map<string, Expected>,
  analytics: { records: AnalyticsRecord[]; log: AnalyticsWrite[] },
): OracleVerdict {
  const stored = new Map(analytics.records.map((r) => [r.customerId, r]));
  const missing: string[] = [];
  let delivered = 0;
  for (const [id, want] of expected) {
    const got = stored.get(id);
    if (got && isDeepStrictEqual(storedShape(got.record), want)) delivered++;
    else missing.push(id);
  }
  const unexpected = [...stored.keys()].filter((id) => !expected.has(id));

  const storedTwice: string[] = [];
  const keys = new Set<string>();
  const lastContent = new Map<string, string>();
  for (const w of analytics.log) {
    // A second write of the same content under a new key is a repeat Analytics counts too.
    const content = JSON.stringify([w.op, w.record ?? null]);
    if (keys.has(w.key)) storedTwice.push(`key ${w.key} (${w.customerId})`);
    else if (lastContent.get(w.customerId) === content)
      storedTwice.push(`same content twice for ${w.customerId}`);
    keys.add(w.key);
    lastContent.set(w.customerId, content);
  }
  return { expected: expected.size, delivered, missing, storedTwice, unexpected };
}
