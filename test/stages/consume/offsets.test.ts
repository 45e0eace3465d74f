import { describe, expect, it } from 'vitest';
import {
  fetchCommitted,
  fetchEnds,
  lagOf,
  partitionId,
  positionOf,
  type PartitionEnds,
} from '../../../src/stages/consume/offsets.js';
import { createTopic, testKafka, uniqueName } from '../../helpers/kafka.js';

describe('positionOf', () => {
  const ends: PartitionEnds = { low: 10n, high: 50n };
  it('resumes at the committed offset', () => expect(positionOf(ends, 30n)).toBe(30n));
  it('starts at the log start when never committed', () => expect(positionOf(ends, undefined)).toBe(10n));
  it('starts at the log start when the commit points below it (retention deleted it)', () =>
    expect(positionOf(ends, 3n)).toBe(10n));
});

describe('lagOf', () => {
  it('counts what is between the resume position and the end, per partition and in total', () => {
    const ends = new Map([
      [partitionId('c', 0), { low: 0n, high: 10n }],
      [partitionId('c', 1), { low: 5n, high: 8n }],
      [partitionId('p', 0), { low: 0n, high: 4n }],
      [partitionId('p', 1), { low: 0n, high: 0n }],
    ]);
    const committed = new Map([
      [partitionId('c', 0), 7n],
      [partitionId('p', 0), 4n],
      // Committed past the end (a topic recreated smaller): no negative lag.
      [partitionId('p', 1), 9n],
    ]);
    expect(lagOf(ends, committed)).toEqual({
      total: 6,
      partitions: { 'c:0': 3, 'c:1': 3, 'p:0': 0, 'p:1': 0 },
    });
  });
});

describe('fetchEnds and fetchCommitted (real broker)', () => {
  it('read end offsets of every partition and the group commits, leaving out partitions never committed', async () => {
    const topic = uniqueName('offsets');
    const group = uniqueName('offsets-group');
    await createTopic(topic, 2);
    const kafka = testKafka();
    const producer = kafka.producer();
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    try {
      await producer.send({
        topic,
        messages: [0, 1, 2].map((i) => ({ partition: 0, value: `m${i}` })),
      });
      expect(await fetchEnds(admin, [topic])).toEqual(
        new Map([
          [partitionId(topic, 0), { low: 0n, high: 3n }],
          [partitionId(topic, 1), { low: 0n, high: 0n }],
        ]),
      );
      expect(await fetchCommitted(admin, group, [topic])).toEqual(new Map());
      await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '2' }] });
      expect(await fetchCommitted(admin, group, [topic])).toEqual(new Map([[partitionId(topic, 0), 2n]]));
    } finally {
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
  });
});
