import { afterEach, describe, expect, it } from 'vitest';
import type { AnalyticsServerOptions } from '../../fixtures/analytics/server.js';
import { DLQ_HEADER } from '../../src/connectors/dead-letter.js';
import { ExitCode, UsageError } from '../../src/errors.js';
import { customerId, firstRound, productId, publishAll, SourceWorld } from '../helpers/consume-data.js';
import {
  committedMessages,
  createHarness,
  expectNothingStoredTwice,
  expectViewMatches,
  mergedCounts,
  writeLog,
  writesPerCustomer,
  type Harness,
  type StateKind,
} from '../helpers/consume-harness.js';
import { readAll, uniqueName } from '../helpers/kafka.js';
import { openDb } from '../../src/state/db.js';
import { MergeStore } from '../../src/state/merge-store.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function setup(kind: StateKind, serverOptions: AnalyticsServerOptions = {}) {
  const h = await createHarness(kind, serverOptions);
  harnesses.push(h);
  return h;
}

describe.each<StateKind>(['sqlite', 'postgres'])('consume --once end to end (%s state)', (kind) => {
  it('delivers the expected unified view, then only what a second round of changes affects', async () => {
    const h = await setup(kind);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 120, 30);
    // Customers first: --once still reads the products first, so they are known at delivery.
    await publishAll([
      { topic: h.customerTopic, envelopes: customerEnvelopes },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    const first = await h.run();
    expect(first).toMatchObject({
      status: 'completed',
      finishedBy: 'end-offsets',
      exitCode: ExitCode.Ok,
      error: null,
    });
    expect(first.consumed).toBe(150);
    expect(first.merged).toBe(150);
    expect(first.deadLettered).toBe(0);
    expect(first.lagLeft?.total).toBe(0);
    expect(first.pendingDeliveries).toBe(0);
    await expectViewMatches(h.server, world.expectedView());
    const round1 = await expectNothingStoredTwice(h.server);
    const seq1 = round1.length;

    // Round two: updates, deletes (envelope and tombstone), product changes, a product that
    // resolves unresolved references, a product tombstone, stale and repeated versions.
    const updated = [3, 4, 50].map(customerId);
    const deleted = [7, 8].map(customerId);
    const tombstoned = [11].map(customerId);
    const changedProduct = productId(2);
    const resolvedProduct = productId(31);
    const goneProduct = productId(5);
    const customerUpdates = updated.map((id, n) =>
      world.customerEnvelope(id, 2, {
        productIds: [productId(10 + n), productId(20)],
        name: `Renamed ${n} ✨`,
      }),
    );
    const deletes = deleted.map((id) => world.deleteEnvelope('customer', id, 2));
    const stale = new SourceWorld().customerEnvelope(customerId(60), 0, { productIds: [], name: 'old' });
    world.tombstone('customer', tombstoned[0]!);
    world.tombstone('product', goneProduct);
    const productChanges = [
      world.productEnvelope(changedProduct, 2, { price: 1234 }),
      world.productEnvelope(resolvedProduct, 1),
    ];
    await publishAll([
      {
        topic: h.customerTopic,
        envelopes: [...customerUpdates, ...deletes, stale, customerEnvelopes[20]!],
        raw: [{ key: tombstoned[0]!, value: null }],
      },
      { topic: h.productTopic, envelopes: productChanges, raw: [{ key: goneProduct, value: null }] },
    ]);
    const second = await h.run();
    expect(second).toMatchObject({
      status: 'completed',
      exitCode: ExitCode.Ok,
      tombstones: 2,
      stale: 1,
      unchanged: 1,
    });
    await expectViewMatches(h.server, world.expectedView());
    const log = await expectNothingStoredTwice(h.server);

    // Exactly the affected customers were sent again; everyone else was left alone.
    const referencing = (p: string) =>
      [...world.customers]
        .filter(([, c]) => !c.deleted && (c.data?.productIds as string[]).includes(p))
        .map(([id]) => id);
    const affected = new Set([
      ...updated,
      ...deleted,
      ...tombstoned,
      ...referencing(changedProduct),
      ...referencing(resolvedProduct),
      ...referencing(goneProduct),
    ]);
    const resent = log.slice(seq1).map((e) => e.customerId);
    // (A customer referencing two changed products may be sent once per change: each is a new version.)
    expect(new Set(resent)).toEqual(affected);
    expect(
      log
        .slice(seq1)
        .filter((e) => e.op === 'delete')
        .map((e) => e.customerId)
        .sort(),
    ).toEqual([...deleted, ...tombstoned].sort());

    // A third run has nothing to do.
    const third = await h.run();
    expect(third).toMatchObject({ consumed: 0, delivered: 0, exitCode: ExitCode.Ok });
    expect(await writeLog(h.server)).toHaveLength(log.length);
  });
});

describe('consume --once under faults', () => {
  it('delivers everything through 5xx, 429 with Retry-After, dropped connections and lost answers', async () => {
    const h = await setup('sqlite', {
      faults: {
        // Never more than three failures in a row, within the sink's retries.
        serverError: { every: 4 },
        hang: { every: 50 },
        maxBatch: 12,
        rateLimit: { every: 11, retryAfter: 1 },
        drop: { every: 9 },
        storeThenDrop: { every: 5 },
      },
    });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 200, 40);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const summary = await h.run({ batchSize: 20 });
    expect(summary.error).toBeNull();
    expect(summary).toMatchObject({ status: 'completed', exitCode: ExitCode.Ok, deadLettered: 0 });
    expect(summary.retries).toBeGreaterThan(0);
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
    const stats = h.server.stats();
    expect(stats.some((s) => s.outcome === 'stored-then-drop')).toBe(true);
    expect(stats.some((s) => s.outcome === 'rate-limited')).toBe(true);
    expect(stats.some((s) => s.outcome === 'hang')).toBe(true);
    expect(stats.some((s) => s.status === 413)).toBe(true);
  });

  it('dead-letters records Analytics refuses with full headers, delivers the rest, exits 3', async () => {
    const poisoned = [customerId(4), customerId(17)];
    const h = await setup('sqlite', { faults: { poison: { customerIds: poisoned } } });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 40, 10);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const summary = await h.run();
    expect(summary.exitCode).toBe(ExitCode.Partial);
    expect(summary.deadLetteredRecords).toBeGreaterThanOrEqual(2);
    const expected = world.expectedView();
    for (const id of poisoned) expected.delete(id);
    await expectViewMatches(h.server, expected);

    const letters = await readAll(h.dlqTopic);
    expect(letters.length).toBe(summary.deadLetteredRecords);
    expect(new Set(letters.map((l) => l.key))).toEqual(new Set(poisoned));
    for (const letter of letters) {
      const value = JSON.parse(letter.value ?? '') as {
        key: string;
        customerId: string;
        op: string;
        record: { customerId: string };
      };
      expect(value.customerId).toBe(letter.key);
      expect(value.record.customerId).toBe(letter.key);
      expect(letter.headers).toMatchObject({
        [DLQ_HEADER.kind]: 'unified-record',
        [DLQ_HEADER.sourceTopic]: h.customerTopic,
        [DLQ_HEADER.sourceKey]: letter.key,
        [DLQ_HEADER.consumerGroup]: h.group,
        [DLQ_HEADER.errorClass]: 'SinkPermanentError',
        [DLQ_HEADER.errorCode]: 'E_SINK_PERMANENT',
        [DLQ_HEADER.recordKey]: value.key,
        [DLQ_HEADER.customerId]: letter.key,
      });
      expect(letter.headers[DLQ_HEADER.sourcePartition]).toMatch(/^[0-2]$/);
      expect(letter.headers[DLQ_HEADER.sourceOffset]).toMatch(/^\d+$/);
      expect(letter.headers[DLQ_HEADER.errorMessage]).toContain('refused by this Analytics account');
      expect(Number(letter.headers[DLQ_HEADER.attempts])).toBeGreaterThanOrEqual(1);
      expect(Date.parse(letter.headers[DLQ_HEADER.deadLetteredAt] ?? '')).toBeGreaterThan(
        Date.now() - 120_000,
      );
    }

    // Rerun: the dead-lettered versions are not sent or dead-lettered again.
    const again = await h.run();
    expect(again).toMatchObject({ exitCode: ExitCode.Ok, deadLettered: 0, delivered: 0 });
    expect(await readAll(h.dlqTopic)).toHaveLength(letters.length);
  });

  it('dead-letters unparsable and invalid messages from the data topics and keeps going', async () => {
    const h = await setup('postgres');
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 30, 10);
    const wrongEntity = productEnvelopes[0]!;
    const tampered = { ...customerEnvelopes[1]!, data: { ...customerEnvelopes[1]!.data, name: 'tampered' } };
    await publishAll([
      {
        topic: h.customerTopic,
        envelopes: customerEnvelopes.slice(0, 15),
        raw: [
          { key: 'X1', value: '{"not json', headers: { origin: 'kcat' } },
          { key: 'X2', value: Buffer.from([0xff, 0xfe, 0x00]) },
          { key: 'X3', value: JSON.stringify({ hello: 'world' }) },
          { key: wrongEntity.id, value: JSON.stringify(wrongEntity) },
          { key: tampered.id, value: JSON.stringify(tampered) },
          { key: null, value: null },
        ],
      },
      { topic: h.customerTopic, envelopes: customerEnvelopes.slice(15) },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    const summary = await h.run();
    expect(summary).toMatchObject({
      exitCode: ExitCode.Partial,
      deadLetteredMessages: 6,
      deadLetteredRecords: 0,
    });
    await expectViewMatches(h.server, world.expectedView());

    const letters = await readAll(h.dlqTopic);
    expect(letters).toHaveLength(6);
    const byKey = new Map(letters.map((l) => [l.key, l]));
    expect(byKey.get('X1')?.value).toBe('{"not json');
    expect(byKey.get('X1')?.headers.origin).toBe('kcat');
    expect(byKey.get('X1')?.headers[DLQ_HEADER.errorMessage]).toMatch(/bad JSON/);
    expect(byKey.get('X2')?.headers[DLQ_HEADER.errorMessage]).toMatch(/invalid UTF-8/);
    expect(byKey.get('X3')?.headers[DLQ_HEADER.errorMessage]).toMatch(/missing required field/);
    expect(byKey.get(wrongEntity.id)?.headers[DLQ_HEADER.errorMessage]).toMatch(
      /product envelope does not belong/,
    );
    expect(byKey.get(tampered.id)?.headers[DLQ_HEADER.errorMessage]).toMatch(/contentHash does not match/);
    expect(byKey.get(null)?.headers[DLQ_HEADER.errorMessage]).toMatch(
      /tombstone \(null value\) without a key/,
    );
    for (const letter of letters) {
      expect(letter.headers).toMatchObject({
        [DLQ_HEADER.kind]: 'source-message',
        [DLQ_HEADER.sourceTopic]: h.customerTopic,
        [DLQ_HEADER.consumerGroup]: h.group,
        [DLQ_HEADER.errorClass]: 'InvalidEnvelopeError',
        [DLQ_HEADER.errorCode]: 'E_INPUT',
        [DLQ_HEADER.attempts]: '1',
        [DLQ_HEADER.sourceKey]: letter.key ?? '',
      });
      expect(letter.headers[DLQ_HEADER.sourceOffset]).toMatch(/^\d+$/);
      expect(Number(letter.headers[DLQ_HEADER.sourceTimestamp])).toBeGreaterThan(Date.now() - 300_000);
    }
  });

  it('exits 75 without committing when Analytics is down, and a rerun delivers everything', async () => {
    const h = await setup('sqlite');
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 20, 5);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    h.server.setFaults({ serverError: { first: 1_000 } });
    const down = await h.run();
    expect(down).toMatchObject({ status: 'failed', exitCode: ExitCode.TempFailure });
    expect(down.error?.code).toBe('E_SINK_TRANSIENT');
    // Product batches marked nobody dirty and may be committed; no customer batch is.
    const customerLag = Object.entries(down.lagLeft?.partitions ?? {})
      .filter(([id]) => id.startsWith(`${h.customerTopic}:`))
      .reduce((n, [, lag]) => n + lag, 0);
    expect(customerLag).toBe(20);
    h.server.setFaults({});
    const up = await h.run();
    expect(up).toMatchObject({ status: 'completed', exitCode: ExitCode.Ok });
    expect(up.consumed).toBeGreaterThanOrEqual(20);
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
  });

  it('refuses to start when a topic is missing', async () => {
    const h = await setup('sqlite');
    await expect(h.run({ deadLetterTopic: uniqueName('missing-dlq') })).rejects.toThrow(UsageError);
  });
});

describe('consume without --once', () => {
  it('stops on the signal after committing the batch in flight; --once then finishes the rest', async () => {
    const h = await setup('sqlite', { faults: { latencyMs: 40 } });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 300, 20);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const controller = new AbortController();
    const running = h.run({ once: false, batchSize: 10, signal: controller.signal });
    while ((await writeLog(h.server)).length < 30) await new Promise((r) => setTimeout(r, 50));
    const abortedAt = Date.now();
    controller.abort();
    const stopped = await running;
    expect(Date.now() - abortedAt).toBeLessThan(20_000);
    expect(stopped).toMatchObject({
      status: 'stopped',
      finishedBy: 'signal',
      exitCode: ExitCode.Ok,
      error: null,
    });
    expect(stopped.commits).toBeGreaterThan(0);
    const rest = await h.run();
    expect(rest.exitCode).toBe(ExitCode.Ok);
    expect(rest.consumed).toBeLessThan(320);
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
  });
});

describe('outbox left behind by another instance', () => {
  async function leaveOutbox(h: Harness, world: SourceWorld): Promise<void> {
    // What a dead instance on another host leaves: merged and committed, claimed, never delivered.
    const db = await openDb(h.state);
    try {
      const store = await MergeStore.open(db);
      const { customerEnvelopes, productEnvelopes } = firstRound(world, 30, 6);
      const position = (offset: number) => ({ topic: h.customerTopic, partition: 0, offset: String(offset) });
      await store.mergeBatch(
        [...productEnvelopes, ...customerEnvelopes].map((envelope, i) => ({
          entity: envelope.entity,
          id: envelope.id,
          envelope,
          position: position(i),
        })),
      );
      expect(await store.claim('other-host/123/abcd', 10, -1)).toHaveLength(10);
    } finally {
      await db.close();
    }
  }

  it('--once delivers it even when there are no new messages', async () => {
    const h = await setup('postgres');
    const world = new SourceWorld();
    await leaveOutbox(h, world);
    const summary = await h.run();
    expect(summary).toMatchObject({
      consumed: 0,
      delivered: 30,
      pendingDeliveries: 0,
      exitCode: ExitCode.Ok,
    });
    await expectViewMatches(h.server, world.expectedView());
  });

  it('a long-running consumer delivers it between batches', async () => {
    const h = await setup('sqlite');
    const world = new SourceWorld();
    await leaveOutbox(h, world);
    const controller = new AbortController();
    const running = h.run({ once: false, signal: controller.signal });
    while ((await writeLog(h.server)).length < 30) await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const summary = await running;
    expect(summary).toMatchObject({ consumed: 0, delivered: 30, exitCode: ExitCode.Ok, status: 'stopped' });
    await expectViewMatches(h.server, world.expectedView());
  });
});

describe('two consumer instances sharing PostgreSQL state', () => {
  it('a second instance joining mid-run (rebalance) loses nothing and stores nothing twice', async () => {
    const h = await setup('postgres', { faults: { latencyMs: 40 } });
    const world = new SourceWorld();
    // ~1.6 MB a customer partition: two Kafka fetches each, so however far the first instance got
    // before it noticed the rebalance, the partitions handed to the second still hold unread messages.
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 3000, 40);
    await publishAll([
      { topic: h.customerTopic, envelopes: customerEnvelopes },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    const first = h.run({ batchSize: 10, idleTimeoutMs: 8_000 });
    while ((await writeLog(h.server)).length < 40) await new Promise((r) => setTimeout(r, 50));
    const second = h.run({ batchSize: 10, idleTimeoutMs: 8_000 });
    const [a, b] = await Promise.all([first, second]);
    expect(a.error).toBeNull();
    expect(b.error).toBeNull();
    expect(a.delivered).toBeGreaterThan(0);
    // The rebalance really happened mid-run: the newcomer got partitions with uncommitted messages.
    expect(b.consumed).toBeGreaterThan(0);
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
    const after = await h.run();
    expect(after).toMatchObject({ consumed: 0, delivered: 0, pendingDeliveries: 0, lagLeft: { total: 0 } });
  });
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each<StateKind>(['sqlite', 'postgres'])('deferred delivery (%s state)', (kind) => {
  it('--once sends each customer of an initial load once, customers published before their products', async () => {
    const h = await setup(kind);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 150, 30);
    await publishAll([
      { topic: h.customerTopic, envelopes: customerEnvelopes },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    // A small backlog: several delivery rounds, each after the products were read.
    const summary = await h.run({ batchSize: 10, deliveryBacklog: 40 });
    expect(summary).toMatchObject({
      status: 'completed',
      exitCode: ExitCode.Ok,
      error: null,
      pendingDeliveries: 0,
      lagLeft: { total: 0 },
    });
    const expected = world.expectedView();
    await expectViewMatches(h.server, expected);
    const log = await expectNothingStoredTwice(h.server);
    expect(writesPerCustomer(log)).toEqual(new Map([...expected.keys()].map((id) => [id, 1])));
    expect(summary.delivered).toBe(expected.size);
    expect(summary.sinkBatches).toBeGreaterThanOrEqual(Math.ceil(expected.size / 10));
    // A product that never arrives does not hold its customers back: they are sent with it unresolved.
    const waiting = [...expected.values()].filter((r) => r.unresolvedProductIds.length > 0);
    expect(waiting.length).toBeGreaterThan(0);
    for (const r of waiting) {
      const sent = log.find((e) => e.customerId === r.customerId)?.record as {
        unresolvedProductIds: string[];
      };
      expect(sent.unresolvedProductIds).toEqual(r.unresolvedProductIds);
    }
  });
});

describe('deferred delivery without --once', () => {
  async function customersThenProducts(maxDeliveryDelayMs: number) {
    const h = await setup('postgres');
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 60, 12);
    await publishAll([{ topic: h.customerTopic, envelopes: customerEnvelopes }]);
    const controller = new AbortController();
    const running = h.run({
      once: false,
      batchSize: 10,
      maxDeliveryDelayMs,
      deliveryBacklog: 10_000,
      signal: controller.signal,
    });
    await until('every customer merged', async () => (await mergedCounts(h.state)).customers === 60);
    const beforeProducts = await writeLog(h.server);
    await publishAll([{ topic: h.productTopic, envelopes: productEnvelopes }]);
    await until('every product merged', async () => (await mergedCounts(h.state)).products === 12);
    return { h, world, controller, running, beforeProducts };
  }

  it('products arriving within --max-delivery-delay are delivered with their customers, once; a stop delivers and commits', async () => {
    const { h, world, controller, running, beforeProducts } = await customersThenProducts(120_000);
    // Merged and marked, but not delivered: the delay has not run out, and nothing is committed.
    expect(beforeProducts).toHaveLength(0);
    expect(await writeLog(h.server)).toHaveLength(0);
    expect(await committedMessages(h)).toBe(0);
    expect((await mergedCounts(h.state)).dirty).toBe(60);
    controller.abort();
    const stopped = await running;
    expect(stopped).toMatchObject({
      status: 'stopped',
      exitCode: ExitCode.Ok,
      error: null,
      consumed: 72,
      delivered: 60,
      pendingDeliveries: 0,
      lagLeft: { total: 0 },
    });
    const expected = world.expectedView();
    await expectViewMatches(h.server, expected);
    const log = await expectNothingStoredTwice(h.server);
    expect(writesPerCustomer(log)).toEqual(new Map([...expected.keys()].map((id) => [id, 1])));
  });

  it('with --max-delivery-delay 0 every batch is delivered at once: customers go unresolved, then again', async () => {
    const { h, world, controller, running } = await customersThenProducts(0);
    await until('the re-deliveries', async () => (await writeLog(h.server)).length > 60);
    controller.abort();
    const stopped = await running;
    expect(stopped).toMatchObject({ status: 'stopped', exitCode: ExitCode.Ok, lagLeft: { total: 0 } });
    await expectViewMatches(h.server, world.expectedView());
    const log = await expectNothingStoredTwice(h.server);
    const first = log.slice(0, 60);
    expect(new Set(first.map((e) => e.customerId)).size).toBe(60);
    // Products were unknown at their first delivery: every customer with references went out unresolved.
    for (const e of first) {
      const record = e.record as { customer: { productIds: string[] }; unresolvedProductIds: string[] };
      expect(record.unresolvedProductIds).toEqual([...new Set(record.customer.productIds)]);
    }
    expect(stopped.delivered).toBeGreaterThan(60);
  });
});
