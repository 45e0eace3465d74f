import { describe, expect, it } from 'vitest';
import { migrateMergeSchema } from '../../src/state/merge-schema.js';
import { newOwnerId, Outbox } from '../../src/state/outbox.js';
import { dirtyIds, freshStateUrl, openTestDb, STORE_KINDS, type StoreKind } from '../helpers/merge-state.js';

async function openOutbox(kind: StoreKind) {
  const db = await openTestDb(await freshStateUrl(kind));
  await migrateMergeSchema(db, () => []);
  const outbox = new Outbox(db);
  const mark = (ids: string[]) => db.transaction((tx) => outbox.markDirty(tx, ids));
  return { db, outbox, mark };
}

describe.each(STORE_KINDS)('Outbox on %s', (kind) => {
  it('claims, completes and records deliveries and dead letters in the ledger', async () => {
    const { db, outbox, mark } = await openOutbox(kind);
    await mark(['C1', 'C2', 'C3']);
    const owner = newOwnerId();
    const claims = await outbox.claim(owner, 10, 60_000);
    expect(claims.map((c) => c.customerId)).toEqual(['C1', 'C2', 'C3']);
    await outbox.complete(owner, [
      { customerId: 'C1', gen: claims[0]!.gen, outcome: 'delivered', hash: 'h1', key: 'k1', op: 'upsert' },
      { customerId: 'C2', gen: claims[1]!.gen, outcome: 'dead-lettered', hash: 'h2' },
      { customerId: 'C3', gen: claims[2]!.gen, outcome: 'skipped' },
    ]);
    expect(await dirtyIds(db)).toEqual([]);
    const ledger = await outbox.ledger(['C1', 'C2', 'C3']);
    expect(ledger.get('C1')).toEqual({ deliveredHash: 'h1', deliveredOp: 'upsert', deadHash: null });
    expect(ledger.get('C2')).toEqual({ deliveredHash: null, deliveredOp: null, deadHash: 'h2' });
    expect(ledger.has('C3')).toBe(false);
    expect(await outbox.counts()).toEqual({ dirty: 0, delivered: 1 });
  });

  it('remarkForDelivery marks dirty and clears the dead-letter mark in one step, keeping the delivered hash', async () => {
    const { db, outbox, mark } = await openOutbox(kind);
    const { gen: first } = await mark(['C1', 'C2']);
    const owner = newOwnerId();
    await outbox.complete(owner, [
      { customerId: 'C1', gen: first, outcome: 'delivered', hash: 'h1', key: 'k1', op: 'upsert' },
      { customerId: 'C2', gen: first, outcome: 'delivered', hash: 'h2', key: 'k2', op: 'upsert' },
    ]);
    const { gen: second } = await mark(['C2']);
    await outbox.complete(owner, [{ customerId: 'C2', gen: second, outcome: 'dead-lettered', hash: 'h2b' }]);
    expect((await outbox.ledger(['C2'])).get('C2')?.deadHash).toBe('h2b');

    const remarked = await outbox.remarkForDelivery(['C2', 'C1', 'C2']);
    expect(remarked.dirtied).toBe(2);
    expect(remarked.gen).toBeGreaterThan(second);
    expect(await dirtyIds(db)).toEqual(['C1', 'C2']);
    expect(await outbox.pendingUpTo(remarked.gen)).toBe(2);
    const ledger = await outbox.ledger(['C1', 'C2']);
    expect(ledger.get('C1')).toEqual({ deliveredHash: 'h1', deliveredOp: 'upsert', deadHash: null });
    expect(ledger.get('C2')).toEqual({ deliveredHash: 'h2', deliveredOp: 'upsert', deadHash: null });
  });

  it('remarkForDelivery of nothing marks nothing, and of unknown customers just marks them', async () => {
    const { db, outbox } = await openOutbox(kind);
    expect(await outbox.remarkForDelivery([])).toEqual({ gen: 0, dirtied: 0 });
    expect(await dirtyIds(db)).toEqual([]);
    expect((await outbox.remarkForDelivery(['C7'])).dirtied).toBe(1);
    expect(await dirtyIds(db)).toEqual(['C7']);
  });

  it('a dead letter of a delivery in flight does not undo a remark made meanwhile', async () => {
    const { db, outbox, mark } = await openOutbox(kind);
    await mark(['C1']);
    const owner = newOwnerId();
    const [claim] = await outbox.claim(owner, 10, 60_000);
    await outbox.remarkForDelivery(['C1']);
    await outbox.complete(owner, [
      { customerId: 'C1', gen: claim!.gen, outcome: 'dead-lettered', hash: 'h1' },
    ]);
    expect(await dirtyIds(db)).toEqual(['C1']);
    expect((await outbox.ledger(['C1'])).has('C1')).toBe(false);
    // Released: the next claim (by anyone) takes it at once.
    expect((await outbox.claim(newOwnerId(), 10, 60_000)).map((c) => c.customerId)).toEqual(['C1']);
  });
});
