import { describe, expect, it, onTestFinished } from 'vitest';
import { startAnalyticsServer } from '../../../fixtures/analytics/server.js';
import { createAnalyticsSink } from '../../../src/connectors/analytics-sink.js';
import { DeadLetterProducer } from '../../../src/connectors/dead-letter.js';
import { silentLogger } from '../../../src/log.js';
import { Drainer, newDrainCounters } from '../../../src/stages/consume/drain.js';
import { MergeStore, newOwnerId } from '../../../src/state/merge-store.js';
import { createTopic, readAll, testBrokers, testKafka, uniqueName } from '../../helpers/kafka.js';
import {
  customer,
  dirtyIds,
  freshStateUrl,
  openTestDb,
  product,
  STORE_KINDS,
  type StoreKind,
} from '../../helpers/merge-state.js';

const TOKEN = 'drain-test-token';

/** A drainer over a private store, the Analytics fixture (refusing C2's records) and a private DLQ topic. */
async function setup(kind: StoreKind) {
  const db = await openTestDb(await freshStateUrl(kind));
  const store = await MergeStore.open(db);
  const server = await startAnalyticsServer({
    token: TOKEN,
    faults: { poison: { customerIds: ['C2'], mode: 'record' } },
  });
  onTestFinished(() => server.close());
  const sink = createAnalyticsSink({
    url: server.url,
    token: TOKEN,
    timeoutMs: 3_000,
    retries: 2,
    batchSize: 500,
    backoffMs: 20,
    backoffLimitMs: 200,
    maxRetryAfterMs: 1_000,
  });
  onTestFinished(() => sink.close());
  const dlqTopic = uniqueName('drain-dlq');
  await createTopic(dlqTopic, 1);
  const deadLetters = new DeadLetterProducer(testKafka(), [testBrokers()], dlqTopic, uniqueName('group'));
  await deadLetters.connect();
  onTestFinished(() => deadLetters.close());
  const counters = newDrainCounters();
  const drainer = new Drainer({
    store,
    sink,
    deadLetters,
    owner: newOwnerId(),
    batchSize: 100,
    leaseMs: 60_000,
    customerTopic: 'customer_data',
    logger: silentLogger,
    counters,
  });
  const drain = (gen: number | null = null) => drainer.drain({ gen, heartbeat: async () => {} });
  const ingests = () => server.stats().filter((s) => s.endpoint === 'ingest').length;
  const stored = () => server.store.currentView().map((e) => e.customerId);
  /** A dirty mark with no change behind it (what a replayed merge or a restart can leave). */
  const bareMark = (ids: string[]) => db.transaction((tx) => store.outbox.markDirty(tx, ids));
  return { db, store, server, dlqTopic, counters, drain, ingests, stored, bareMark };
}

describe.each(STORE_KINDS)('Drainer on %s', (kind) => {
  it('delivers, dead-letters what Analytics refuses, and records both so neither is sent again', async () => {
    const t = await setup(kind);
    await t.store.mergeBatch([customer('C1', 1, ['P1']), customer('C2', 1, []), product('P1', 1)]);
    await t.drain();
    expect(t.counters).toMatchObject({ delivered: 1, deadLetteredRecords: 1, skippedDuplicate: 0 });
    expect(t.stored()).toEqual(['C1']);
    expect((await readAll(t.dlqTopic)).map((r) => r.key)).toEqual(['C2']);
    expect(await dirtyIds(t.db)).toEqual([]);

    // Bare marks of unchanged records: the delivered one and the refused one are both skipped.
    t.server.setFaults({});
    const before = t.ingests();
    await t.bareMark(['C1', 'C2']);
    await t.drain();
    expect(t.counters).toMatchObject({ delivered: 1, skippedDuplicate: 2 });
    expect(t.ingests()).toBe(before);
    expect(await dirtyIds(t.db)).toEqual([]);
  });

  it('a dead-lettered customer remarked for delivery is delivered; a remarked delivered one is skipped', async () => {
    const t = await setup(kind);
    await t.store.mergeBatch([customer('C1', 1, []), customer('C2', 1, [])]);
    await t.drain();
    expect(t.stored()).toEqual(['C1']);

    t.server.setFaults({});
    const { gen, dirtied } = await t.store.remarkForDelivery(['C1', 'C2']);
    expect(dirtied).toBe(2);
    await t.drain(gen);
    expect(t.counters).toMatchObject({ delivered: 2, skippedDuplicate: 1, deadLetteredRecords: 1 });
    expect(t.stored()).toEqual(['C1', 'C2']);
    expect(await t.store.pendingUpTo(gen)).toBe(0);
    const ledger = await t.store.ledger(['C2']);
    expect(ledger.get('C2')).toMatchObject({ deadHash: null, deliveredOp: 'upsert' });
    expect((await readAll(t.dlqTopic)).map((r) => r.key)).toEqual(['C2']);
  });

  it('a remarked customer refused again goes to the dead-letter topic again', async () => {
    const t = await setup(kind);
    await t.store.mergeBatch([customer('C2', 1, [])]);
    await t.drain();
    await t.store.remarkForDelivery(['C2']);
    await t.drain();
    expect(t.counters).toMatchObject({ delivered: 0, deadLetteredRecords: 2, skippedDuplicate: 0 });
    expect((await readAll(t.dlqTopic)).map((r) => r.key)).toEqual(['C2', 'C2']);
    expect(await dirtyIds(t.db)).toEqual([]);
  });

  it('a changed customer is delivered again; a delete of a customer never delivered is skipped', async () => {
    const t = await setup(kind);
    await t.store.mergeBatch([customer('C1', 1, []), customer('C3', 1, [])]);
    await t.drain();
    await t.store.mergeBatch([customer('C1', 2, [])]);
    await t.bareMark(['C9']);
    await t.drain();
    expect(t.counters).toMatchObject({ delivered: 3, skippedDuplicate: 1 });
    const c1 = t.server.store.currentView().find((e) => e.customerId === 'C1');
    expect((c1?.record as { customer: { name: string } }).customer.name).toBe('Name C1 v2');
  });
});
