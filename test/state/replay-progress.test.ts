import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeEnvelope } from '../../src/records/envelope.js';
import { openDb, type Db } from '../../src/state/db.js';
import { MergeStore, newOwnerId } from '../../src/state/merge-store.js';
import { ReplayProgress } from '../../src/state/replay-progress.js';
import { createPgSchema } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(kind: 'sqlite' | 'postgres'): Promise<Db> {
  let url: string;
  if (kind === 'sqlite') url = join(tempDir('syncctl-replay-progress-'), 'state.db');
  else {
    const schema = await createPgSchema('replay_progress');
    cleanups.push(schema.drop);
    url = schema.url;
  }
  const db = await openDb(url);
  cleanups.push(() => db.close());
  return db;
}

function customer(id: string, version: number) {
  const envelope = makeEnvelope({
    source: 'crm',
    id,
    op: 'upsert',
    data: { id, name: `${id} v${version}`, productIds: [] },
    sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString(),
    sourceVersion: version,
  });
  return {
    entity: 'customer' as const,
    id,
    envelope,
    position: { topic: 'c', partition: 0, offset: String(version) },
  };
}

describe.each(['sqlite', 'postgres'] as const)('replay state (%s)', (kind) => {
  it('remembers replayed letters per dead-letter topic, partition and offset', async () => {
    const db = await open(kind);
    const progress = await ReplayProgress.open(db);
    expect(await progress.done('dlq')).toEqual(new Map());
    await progress.mark('dlq', [
      { partition: 0, offset: '5', outcome: 'republished' },
      { partition: 1, offset: '5', outcome: 'remarked' },
    ]);
    await progress.mark('dlq', [{ partition: 0, offset: '5', outcome: 'republished' }]);
    await progress.mark('other', [{ partition: 0, offset: '7', outcome: 'failed-again' }]);
    expect(await progress.done('dlq')).toEqual(
      new Map([
        ['0:5', 'republished'],
        ['1:5', 'remarked'],
      ]),
    );
    // Opening again (another run) keeps what was stored.
    expect((await (await ReplayProgress.open(db)).done('other')).get('0:7')).toBe('failed-again');
  });

  it('remarkForDelivery marks a dead-lettered customer dirty again and clears only its dead mark', async () => {
    const db = await open(kind);
    const store = await MergeStore.open(db);
    const owner = newOwnerId();
    // C1 delivered at v1, then v2 dead-lettered; C2 dead-lettered at v1.
    await store.mergeBatch([customer('C1', 1)]);
    let claims = await store.claim(owner, 10, 60_000);
    let built = await store.buildUnified(['C1']);
    const delivered = built.get('C1')!.delivery;
    await store.complete(owner, [
      { ...claims[0]!, outcome: 'delivered', hash: delivered.hash, key: delivered.sink.key, op: 'upsert' },
    ]);
    await store.mergeBatch([customer('C1', 2), customer('C2', 1)]);
    claims = await store.claim(owner, 10, 60_000);
    built = await store.buildUnified(['C1', 'C2']);
    await store.complete(
      owner,
      claims.map((c) => ({
        ...c,
        outcome: 'dead-lettered' as const,
        hash: built.get(c.customerId)!.delivery.hash,
      })),
    );
    expect(await store.pendingTotal()).toBe(0);
    const ledgerBefore = await store.ledger(['C1', 'C2']);
    expect(ledgerBefore.get('C1')).toMatchObject({
      deliveredHash: delivered.hash,
      deadHash: built.get('C1')!.delivery.hash,
    });

    const before = await store.maxGen();
    const result = await store.remarkForDelivery(['C2', 'C1', 'C1']);
    expect(result.dirtied).toBe(2);
    expect(result.gen).toBeGreaterThan(before);
    expect(await store.pendingUpTo(result.gen)).toBe(2);
    const ledger = await store.ledger(['C1', 'C2']);
    expect(ledger.get('C1')).toEqual({
      deliveredHash: delivered.hash,
      deliveredOp: 'upsert',
      deadHash: null,
    });
    expect(ledger.get('C2')).toMatchObject({ deliveredHash: null, deadHash: null });
    expect((await store.claim(owner, 10, 60_000)).map((c) => c.customerId)).toEqual(['C1', 'C2']);
  });
});
