import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAdmin } from '../../src/connectors/kafka.js';
import { startSyncctl, type Child } from '../helpers/cli.js';
import { startTestCluster, type TestCluster } from '../helpers/kafka-cluster.js';
import { tempDir } from '../helpers/temp.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let cluster: TestCluster | undefined;
const worlds: FaultWorld[] = [];

beforeAll(async () => {
  cluster = await startTestCluster(3);
});
afterAll(async () => {
  for (const w of worlds) await w.close();
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Messages on a topic now (sum of its partitions' end offsets). */
async function topicSize(c: TestCluster, topic: string): Promise<number> {
  return withAdmin(c.kafka(), c.brokers.split(','), async (admin) =>
    (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0),
  );
}

/** Offsets the group has committed on a topic so far. */
async function committed(c: TestCluster, group: string, topic: string): Promise<number> {
  return withAdmin(c.kafka(), c.brokers.split(','), async (admin) => {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  });
}

/** Polls `point` until it holds or the child exits; says whether the child was still running. */
async function untilPoint(
  child: Child,
  point: () => Promise<boolean>,
  timeoutMs = 600_000,
): Promise<boolean> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    if (await point().catch(() => false)) return !exited;
    await sleep(20);
  }
  return false;
}

/** Waits for a run a fault hit; one that gave up (exit 75) is rerun until clean, as cron would. */
async function finish(w: FaultWorld, child: Child, args: string[]): Promise<number | null> {
  const { code } = await child.exited;
  if (code === 0) return code;
  if (code !== 75)
    throw new Error(`syncctl ${args.join(' ')} exited ${code}:\n${child.stderr().slice(-3000)}`);
  w.exitCodes.set(code, (w.exitCodes.get(code) ?? 0) + 1);
  w.reruns++;
  await w.untilClean(args);
  return code;
}

describe('a 3-broker KRaft cluster (replication 3, min.insync.replicas=2)', () => {
  it('loses and doubles nothing when partition leaders are SIGKILLed mid-publish and mid-consume', async () => {
    const c = cluster!;
    const w = await FaultWorld.start({
      tag: 'faults-cluster-leader',
      seed: 1313,
      customers: scale.clusterCustomers,
      products: scale.clusterProducts,
      inventoryPageSize: 500,
      kafka: c,
    });
    worlds.push(w);
    const topics = [w.h.customerTopic, w.h.productTopic, w.h.dlqTopic];
    await w.untilClean(w.fetchArgs('inventory'));
    const file = join(tempDir('syncctl-faults-cluster-'), 'customers.ndjson');
    await w.untilClean([...w.common(), 'fetch', '--source', 'crm', '--crm-page-size', '500', '--out', file]);

    // Mid-publish: the leader of partition 0 is frozen once a quarter of the file is on the topic, so
    // the request in flight to it is never processed, and SIGKILLed a second later.
    const publishArgs = [
      ...w.common(),
      '--json',
      'publish',
      '--topic',
      w.h.customerTopic,
      '--in',
      file,
      '--batch-size',
      '250',
    ];
    const publishVictim = await c.leaderOf(w.h.customerTopic, 0);
    const publish = startSyncctl(publishArgs, w.env);
    const midPublish = await untilPoint(
      publish,
      async () => (await topicSize(c, w.h.customerTopic)) >= scale.clusterCustomers / 4,
    );
    c.freeze(publishVictim);
    await sleep(1_000);
    await c.kill(publishVictim);
    const publishExit = await finish(w, publish, publishArgs);
    await c.restart(publishVictim);
    await c.waitForInSync(topics);

    // Mid-consume: the leader of another partition dies once the group has committed some offsets
    // (or Analytics has its first writes), while the rest is still being read.
    const consumeArgs = w.consumeArgs();
    const consumeVictim = await c.leaderOf(w.h.customerTopic, 1);
    const consumer = startSyncctl(consumeArgs, w.env);
    const midConsume = await untilPoint(
      consumer,
      async () => w.analyticsWrites() > 0 || (await committed(c, w.h.group, w.h.customerTopic)) > 0,
    );
    await c.kill(consumeVictim);
    const consumeExit = await finish(w, consumer, consumeArgs);
    await c.restart(consumeVictim);
    // Anything the killed run left (it may have stopped with exit 75 and been rerun already).
    await w.untilClean(consumeArgs);

    const { verdict } = await w.report(
      'cluster-leader-kill',
      `3-broker KRaft cluster (RF 3, min.insync.replicas=2): the leader of a customer partition frozen and SIGKILLed mid-publish, another SIGKILLed mid-consume, each restarted; ${scale.clusterCustomers} customers, ${scale.clusterProducts} products`,
      {
        'killed mid-publish': midPublish
          ? `broker ${publishVictim}`
          : `broker ${publishVictim} (after publish ended)`,
        'killed mid-consume': midConsume
          ? `broker ${consumeVictim}`
          : `broker ${consumeVictim} (after consume ended)`,
        'publish exit': String(publishExit),
        'consume exit': String(consumeExit),
        'customer messages': await topicSize(c, w.h.customerTopic),
      },
    );
    expect(midPublish).toBe(true);
    expect(midConsume).toBe(true);
    expectClean(verdict);
    expect(verdict.expected).toBeGreaterThan(scale.clusterCustomers * 0.9);
  });

  it('delivers everything once with one broker down for the whole run', async () => {
    const c = cluster!;
    const w = await FaultWorld.start({
      tag: 'faults-cluster-down',
      seed: 1314,
      customers: scale.customers,
      products: scale.products,
      kafka: c,
    });
    worlds.push(w);
    // Topics with three copies need three brokers to be created, and so does the group offsets
    // topic: both exist before the broker goes down (asking for the group's coordinator makes it).
    await withAdmin(c.kafka(), c.brokers.split(','), (admin) => admin.describeGroups([w.h.group]));
    const down = c.nodes[2]!.id;
    await c.kill(down);
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm'));
    await w.untilClean(w.consumeArgs());

    const { verdict } = await w.report(
      'cluster-broker-down',
      `3-broker KRaft cluster (RF 3, min.insync.replicas=2) with broker ${down} SIGKILLed before the run and kept down: fetch --publish both sources, consume --once; ${scale.customers} customers, ${scale.products} products`,
      { 'brokers up': c.nodes.length - 1 },
    );
    expectClean(verdict);
    expect(verdict.expected).toBeGreaterThan(scale.customers * 0.9);
    await c.restart(down);
  });
});
