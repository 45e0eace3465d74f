import { describe, expect, it } from 'vitest';
import { expectedCustomers, type Customer } from '../../fixtures/data/customers.js';
import { expectedProducts, type Product } from '../../fixtures/data/products.js';
import { expectedJoin, judge, type AnalyticsRecord, type AnalyticsWrite } from './oracle.js';

const customers = [...expectedCustomers({ seed: 5, count: 60, products: 20 })];
const products = [...expectedProducts({ seed: 5, count: 20 })];

/** What a correct pipeline would leave at Analytics, shaped like the fixture's read-back. */
function perfectAnalytics(
  cs: Customer[],
  ps: Product[],
): { records: AnalyticsRecord[]; log: AnalyticsWrite[] } {
  const byId = new Map(ps.map((p) => [p.id, p]));
  const records = cs
    .filter((c) => !c.archived)
    .map((c) => {
      const refs = [...new Set(c.productIds)];
      return {
        customerId: c.id,
        key: `k-${c.id}-${c.version}`,
        record: {
          customerId: c.id,
          customer: JSON.parse(JSON.stringify(c)),
          products: refs.map((id) => ({
            productId: id,
            discontinued: byId.get(id)!.discontinued,
            product: byId.get(id),
          })),
          unresolvedProductIds: [],
        },
      };
    });
  const log = records.map((r) => ({
    key: r.key,
    customerId: r.customerId,
    op: 'upsert' as const,
    record: r.record,
  }));
  return { records, log };
}

describe('fault-suite oracle', () => {
  it('finds nothing wrong with a correct delivery', () => {
    const verdict = judge(expectedJoin(customers, products), perfectAnalytics(customers, products));
    expect(verdict.expected).toBeGreaterThan(50);
    expect(verdict).toMatchObject({
      delivered: verdict.expected,
      missing: [],
      storedTwice: [],
      unexpected: [],
    });
  });

  it('catches a missing customer and one holding a stale product', () => {
    const analytics = perfectAnalytics(customers, products);
    const dropped = analytics.records.splice(3, 1)[0]!;
    const stale = analytics.records.find((r) => (r.record as { products: unknown[] }).products.length > 0)!;
    const first = (stale.record as { products: { product: Product }[] }).products[0]!;
    first.product = { ...first.product, version: first.product.version - 1 };
    const verdict = judge(expectedJoin(customers, products), analytics);
    expect(verdict.missing.sort()).toEqual([dropped.customerId, stale.customerId].sort());
    expect(verdict.delivered).toBe(verdict.expected - 2);
  });

  it('catches a record stored twice, by key and by content', () => {
    const analytics = perfectAnalytics(customers, products);
    const [a, b] = analytics.log;
    analytics.log.push({ ...a! }, { ...b!, key: 'another-key' });
    const verdict = judge(expectedJoin(customers, products), analytics);
    expect(verdict.storedTwice).toEqual([
      `key ${a!.key} (${a!.customerId})`,
      `same content twice for ${b!.customerId}`,
    ]);
    expect(verdict.missing).toEqual([]);
  });

  it('catches an archived customer still at Analytics', () => {
    const archived = { ...customers[0]!, archived: true, deletedAt: new Date().toISOString() };
    const verdict = judge(
      expectedJoin([archived, ...customers.slice(1)], products),
      perfectAnalytics(customers, products),
    );
    expect(verdict.unexpected).toEqual([archived.id]);
  });
});
