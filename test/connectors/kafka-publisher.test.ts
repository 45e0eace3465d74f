import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokers } from '../../src/connectors/kafka.js';
import { KafkaPublisher } from '../../src/connectors/kafka-publisher.js';
import { sampleEnvelopes } from '../helpers/envelopes.js';
import { startTestCluster, type TestCluster } from '../helpers/kafka-cluster.js';
import { readAll, uniqueName } from '../helpers/kafka.js';

const RECORDS = 40_000;
const CHUNK = 2_000;

let cluster: TestCluster | undefined;

beforeAll(async () => {
  cluster = await startTestCluster(3);
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

describe('KafkaPublisher on a 3-broker cluster', () => {
  it('publishes every record exactly once while a partition leader is SIGKILLed mid-send', async () => {
    const c = cluster!;
    const topic = uniqueName('failover');
    await c.createTopic(topic, 6);
    const publisher = new KafkaPublisher(c.kafka(), parseBrokers(c.brokers), topic);
    await publisher.connect();
    const envelopes = sampleEnvelopes(RECORDS, RECORDS);
    const victim = await c.leaderOf(topic, 0);

    let acknowledged = 0;
    let killed: Promise<void> | undefined;
    for (let i = 0; i < envelopes.length; i += CHUNK) {
      if (i === CHUNK * 4) {
        // Frozen between two sends, then killed while the next one is in flight: its request to the
        // leader is never processed, so the records of that leader's partitions exist nowhere else.
        c.freeze(victim);
        killed = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() => c.kill(victim));
      }
      const result = await publisher.publish(envelopes.slice(i, i + CHUNK));
      acknowledged += result.records;
    }
    await killed;
    await publisher.close();
    expect(acknowledged).toBe(RECORDS);
    // The dead node's partitions did move: a failover happened, not a send that finished first.
    expect(await c.leaderOf(topic, 0)).not.toBe(victim);

    const records = await readAll(topic, c.kafka());
    const keys = records.map((r) => r.headers['syncctl-idempotency-key']);
    expect(new Set(keys).size).toBe(RECORDS);
    expect(records).toHaveLength(RECORDS);
    expect(new Set(keys)).toEqual(new Set(envelopes.map((e) => e.idempotencyKey)));
  }, 300_000);
});
