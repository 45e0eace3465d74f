import { describe, expect, it } from 'vitest';
import { MergeStore } from '../../src/state/merge-store.js';
import { ReadModel } from '../../src/state/read-model.js';
import {
  customer,
  freshStateUrl,
  openTestDb,
  product,
  STORE_KINDS,
  tombstone,
} from '../helpers/merge-state.js';

interface Unified {
  customer: { name: string };
  products: { productId: string; discontinued: boolean; product: { name: string } | null }[];
  unresolvedProductIds: string[];
}

describe.each(STORE_KINDS)('ReadModel on %s', (kind) => {
  it('joins each customer with its products in the order the customer lists them', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    const store = await MergeStore.open(db);
    await store.mergeBatch([
      customer('C1', 1, ['P3', 'P1', 'P4', 'P2']),
      customer('C2', 1, ['P1']),
      customer('C3', 1, []),
      product('P1', 1),
      product('P2', 1, { discontinued: true }),
      product('P3', 1),
      tombstone('product', 'P3'),
    ]);
    const built = await new ReadModel(db).buildUnified(['C1', 'C2', 'C3', 'C9']);
    const c1 = built.get('C1')?.delivery.sink.record as unknown as Unified;
    expect(c1.products.map((p) => [p.productId, p.discontinued, p.product?.name])).toEqual([
      ['P3', true, 'Product P3 v1'],
      ['P1', false, 'Product P1 v1'],
      ['P2', true, 'Product P2 v1'],
    ]);
    expect(c1.unresolvedProductIds).toEqual(['P4']);
    expect((built.get('C2')?.delivery.sink.record as unknown as Unified).products).toHaveLength(1);
    expect((built.get('C3')?.delivery.sink.record as unknown as Unified).products).toEqual([]);
    // Unknown customers are deletes, with no source position to dead-letter from.
    expect(built.get('C9')).toMatchObject({ delivery: { sink: { op: 'delete' } }, source: null });
    expect(built.get('C1')?.source).toMatchObject({ topic: 'c', partition: 0 });
  });

  it('reads the references stored at merge time, not the customer JSON under the current path', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    const first = await MergeStore.open(db);
    await first.mergeBatch([
      customer('C1', 1, ['P1'], { orders: [{ productId: 'P2' }] }),
      product('P1', 1),
      product('P2', 1),
    ]);
    // Opened later with another --product-ref-path: the stored references still decide.
    const later = await MergeStore.open(db, { productRefPath: 'orders[].productId' });
    const before = (await later.buildUnified(['C1'])).get('C1')?.delivery.sink.record as unknown as Unified;
    expect(before.products.map((p) => p.productId)).toEqual(['P1']);
    // The customer's next version is stored under the new path.
    await later.mergeBatch([customer('C1', 2, ['P1'], { orders: [{ productId: 'P2' }] })]);
    const after = (await later.buildUnified(['C1'])).get('C1')?.delivery.sink.record as unknown as Unified;
    expect(after.products.map((p) => p.productId)).toEqual(['P2']);
  });

  it('a deleted customer builds as a delete; the unified view pages through live customers only', async () => {
    const db = await openTestDb(await freshStateUrl(kind));
    const store = await MergeStore.open(db);
    const ids = ['C1', 'C2', 'C3', 'C4', 'C5'];
    await store.mergeBatch([
      ...ids.map((id) => customer(id, 1, ['P1'])),
      product('P1', 1),
      tombstone('customer', 'C2'),
    ]);
    const model = new ReadModel(db);
    expect((await model.buildUnified(['C2'])).get('C2')?.delivery.sink).toMatchObject({
      op: 'delete',
      record: null,
    });
    const seen: string[] = [];
    for await (const d of model.unifiedView(2)) {
      seen.push(d.sink.customerId);
      expect((d.sink.record as unknown as Unified).products.map((p) => p.productId)).toEqual(['P1']);
    }
    expect(seen).toEqual(['C1', 'C3', 'C4', 'C5']);
  });
});
