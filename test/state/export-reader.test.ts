import { afterEach, describe, expect, it } from 'vitest';
import { MergeStore } from '../../src/state/merge-store.js';
import { readEntities, readUnifiedView } from '../../src/state/export-reader.js';
import type { Db } from '../../src/state/db.js';
import {
  customerItem,
  openTestStore,
  productItem,
  seed,
  trickyItems,
  type StoreKind,
} from '../helpers/export-data.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function store(kind: StoreKind): Promise<Db> {
  const s = await openTestStore(kind);
  cleanups.push(s.close);
  return s.db;
}

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

describe.each<StoreKind>(['sqlite', 'postgres'])('export reader on %s', (kind) => {
  it('yields exactly the unified records consume would deliver, in id order, across pages', async () => {
    const db = await store(kind);
    await seed(db, trickyItems());
    const expected = (await all((await MergeStore.open(db)).unifiedView())).map((d) => d.sink.record);
    const rows = await all(readUnifiedView(db, { pageSize: 3 }));
    expect(rows.map((r) => r.record)).toEqual(expected);
    expect(rows.map((r) => r.record.customerId)).toEqual([
      'C01',
      'C02',
      'C03',
      'C04',
      'C05',
      'C06',
      'C07',
      'C08',
      'C10',
    ]);
  });

  it('reads customers (live only) and products (deleted ones too) by id', async () => {
    const db = await store(kind);
    await seed(db, trickyItems());
    const customers = await all(readEntities(db, 'customer', { pageSize: 4 }));
    expect(customers.map((c) => c.id)).not.toContain('C09');
    expect(customers).toHaveLength(9);
    const products = await all(readEntities(db, 'product', { pageSize: 2 }));
    expect(products.map((p) => [p.id, p.deleted])).toEqual([
      ['P1', false],
      ['P2', false],
      ['P3', false],
      ['P4', true],
    ]);
  });

  it('--since keeps rows whose customer or referenced product was merged at or after the time', async () => {
    const db = await store(kind);
    await seed(db, trickyItems());
    await new Promise((r) => setTimeout(r, 5));
    const since = new Date().toISOString();
    expect(await all(readUnifiedView(db, { since }))).toEqual([]);
    await seed(db, [
      customerItem('C02', { name: 'changed', productIds: [] }, 2),
      customerItem('C11', { name: 'new' }),
    ]);
    // A product change puts every customer referencing it in the export.
    await seed(db, [productItem('P3', { name: 'v2' }, 2)]);
    const rows = await all(readUnifiedView(db, { since }));
    expect(rows.map((r) => r.record.customerId)).toEqual(['C02', 'C03', 'C07', 'C11']);
    expect(rows.every((r) => r.changedAt >= since)).toBe(true);
    expect((await all(readEntities(db, 'product', { since }))).map((p) => p.id)).toEqual(['P3']);
  });

  it('an empty or never-used state store exports nothing', async () => {
    const db = await store(kind);
    expect(await all(readUnifiedView(db))).toEqual([]);
    expect(await all(readEntities(db, 'product'))).toEqual([]);
  });
});
