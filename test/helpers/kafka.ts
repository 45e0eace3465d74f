import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { inject } from 'vitest';
import { createKafka, waitForTopicLeaders } from '../../src/connectors/kafka.js';

export function testBrokers(): string {
  return inject('brokers');
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testKafka() {
  return createKafka({ brokers: [testBrokers()], clientId: uniqueName('test') });
}

/** Creates a topic and waits until every partition has a leader (bounded for a loaded machine). */
export async function createTopic(name: string, partitions = 3, kafka = testKafka()): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: false, topics: [{ topic: name, numPartitions: partitions }] });
    await waitForTopicLeaders(admin, [name], 60_000);
  } finally {
    await admin.disconnect();
  }
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning to the end offsets seen now, with a fresh consumer group. */
export async function readAll(topic: string, kafka: Kafka = testKafka()): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(ends.filter((e) => e.high !== e.low).map((e) => [e.partition, BigInt(e.high)]));
  const records: ReadRecord[] = [];
  if (remaining.size === 0) return records;
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out reading ${topic}`)), 60_000);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v);
            records.push({
              partition: batch.partition,
              offset: m.offset,
              key: m.key?.toString() ?? null,
              value: m.value?.toString() ?? null,
              headers,
            });
          }
          const end = remaining.get(batch.partition);
          if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) remaining.delete(batch.partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return records;
}
