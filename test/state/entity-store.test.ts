import { describe, expect, it } from 'vitest';
import { EntityStore } from '../../src/state/entity-store.js';
import { migrateMergeSchema } from '../../src/state/merge-schema.js';
import { Outbox } from '../../src/state/outbox.js';
import {
  customer,
  dirtyIds,
  freshStateUrl,
  openTestDb,
  product,
  STORE_KINDS,
  tombstone,
  type StoreKind,
} from '../helpers/merge-state.js';

async function openEntities(kind: StoreKind, refPath = 'productIds') {
  const db = await openTestDb(await freshStateUrl(kind));
  const outbox = new Outbox(db);
  const entities = new EntityStore(db, outbox, refPath);
  await migrateMergeSchema(db, (data) => entities.productIdsOf(data));
  return { db, entities, outbox };
}

describe.each(STORE_KINDS)('EntityStore on %s', (kind) => {
  it('keeps the newest version of each entity and reports what each item did', async () => {
    const { entities } = await openEntities(kind);
    const r = await entities.mergeBatch([
      customer('C1', 2, []),
      customer('C1', 1, []),
      customer('C1', 2, []),
      product('P1', 1),
      customer('C1', 3, []),
    ]);
    expect(r.outcomes).toEqual(['applied', 'stale', 'unchanged', 'applied', 'applied']);
    const stored = await entities.load('customer', ['C1', 'C9']);
    expect([...stored.keys()]).toEqual(['C1']);
    expect(JSON.parse(stored.get('C1')?.data ?? 'null')).toMatchObject({ name: 'Name C1 v3' });
  });

  it('stores product references in the order the record lists them, rewritten on change, dropped on delete', async () => {
    const { entities } = await openEntities(kind);
    await entities.mergeBatch([customer('C1', 1, ['P3', 'P1', 'P3', 'P2']), customer('C2', 1, ['P1'])]);
    expect(await entities.productRefs(['C1', 'C2', 'C9'])).toEqual(
      new Map([
        ['C1', ['P3', 'P1', 'P2']],
        ['C2', ['P1']],
      ]),
    );
    await entities.mergeBatch([customer('C1', 2, ['P2', 'P4'])]);
    expect((await entities.productRefs(['C1'])).get('C1')).toEqual(['P2', 'P4']);
    await entities.mergeBatch([tombstone('customer', 'C1')]);
    expect((await entities.productRefs(['C1'])).has('C1')).toBe(false);
  });

  it('follows a configured reference path into nested orders', async () => {
    const { entities } = await openEntities(kind, 'orders[].items[].productId');
    await entities.mergeBatch([
      customer('C1', 1, ['ignored'], {
        orders: [{ items: [{ productId: 'P2' }, { productId: 'P1' }] }, { items: [{ productId: 'P2' }] }],
      }),
    ]);
    expect((await entities.productRefs(['C1'])).get('C1')).toEqual(['P2', 'P1']);
  });

  it('marks dirty the changed customers and every customer referencing a changed product, once each', async () => {
    const { db, entities } = await openEntities(kind);
    const first = await entities.mergeBatch([customer('C1', 1, ['P1']), customer('C2', 1, ['P1', 'P2'])]);
    expect(first).toMatchObject({ dirtied: 2 });
    await db.run('DELETE FROM consume_dirty');
    // C1 changes and its product does too: one mark for C1, one for C2.
    const second = await entities.mergeBatch([customer('C1', 2, ['P1']), product('P1', 1)]);
    expect(second.dirtied).toBe(2);
    expect(second.gen).toBeGreaterThan(first.gen ?? Infinity);
    expect(await dirtyIds(db)).toEqual(['C1', 'C2']);
    await db.run('DELETE FROM consume_dirty');
    // Nothing changed: no generation, no marks.
    expect(await entities.mergeBatch([product('P1', 1)])).toMatchObject({ gen: null, dirtied: 0 });
    // A product nobody references still moves the generation on.
    const lone = await entities.mergeBatch([product('P9', 1)]);
    expect(lone.dirtied).toBe(0);
    expect(lone.gen).not.toBeNull();
  });

  it('counts live customers and products', async () => {
    const { entities } = await openEntities(kind);
    await entities.mergeBatch([
      customer('C1', 1, []),
      customer('C2', 1, []),
      product('P1', 1),
      tombstone('customer', 'C2'),
    ]);
    expect(await entities.counts()).toEqual({ customers: 1, products: 1 });
  });
});
