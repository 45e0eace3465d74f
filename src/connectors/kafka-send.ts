import { setTimeout as sleep } from 'node:timers/promises';
import {
  Partitioners,
  type Kafka,
  type Message,
  type Producer,
  type RecordMetadata,
  type TopicMessages,
} from 'kafkajs';
import { KafkaError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { toKafkaError, withAdmin } from './kafka.js';

/** How often partitions missing from a send's result are sent again before the send fails (retryable). */
export const MISSING_PARTITION_ATTEMPTS = 6;
const RESEND_BACKOFF_MS = 250;

export interface SendEveryOptions {
  brokers: string[];
  /** What the send is for, in error messages: "publishing to customer_data". */
  action: string;
  logger?: Logger;
  timeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
}

/**
 * Assigns each message without a partition the one kafkajs would choose (Java-compatible murmur2
 * of the key; keyless messages round-robin), so a send's result can be checked per partition.
 */
export function assignPartitions(messages: Message[], partitionCount: number): Message[] {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitionCount }, (_, i) => ({ partitionId: i, leader: 0 }));
  for (const message of messages) {
    message.partition ??= partitioner({ topic: '', partitionMetadata: partitionMetadata as never, message });
  }
  return messages;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Sends every message with acks=all and resolves only once each partition written to is in the
 * result. kafkajs 2.2.4 resolves some sends without writing every partition: when a partition's
 * leader dies mid-send, its retry goes only to brokers that have not answered yet, so a partition
 * whose new leader already answered for other partitions is skipped — no error, the result just
 * lacks it, and its records are lost. The missing partitions are sent again (with their original
 * idempotent sequence numbers, which kafkajs rolled back when the dead leader's request failed, so
 * the broker drops a copy that did arrive); after `attempts` rounds the send fails as retryable.
 * Every message must carry its partition (assignPartitions).
 */
export async function sendEvery(
  producer: Producer,
  topicMessages: TopicMessages[],
  options: SendEveryOptions,
): Promise<RecordMetadata[]> {
  const logger = options.logger ?? silentLogger;
  const attempts = options.attempts ?? MISSING_PARTITION_ATTEMPTS;
  const backoffMs = options.backoffMs ?? RESEND_BACKOFF_MS;
  let pending = topicMessages.filter((t) => t.messages.length > 0);
  for (const { messages } of pending) {
    if (messages.some((m) => m.partition === undefined))
      throw new Error('sendEvery needs every message to carry its partition');
  }
  const results: RecordMetadata[] = [];
  for (let attempt = 1; pending.length > 0; attempt++) {
    let answered: RecordMetadata[];
    try {
      answered = await producer.sendBatch({
        topicMessages: pending,
        acks: -1,
        timeout: options.timeoutMs ?? 30_000,
      });
    } catch (err) {
      throw toKafkaError(err, options.brokers, options.action);
    }
    results.push(...answered);
    const written = new Set(answered.map((r) => keyOf(r.topicName, r.partition)));
    pending = pending
      .map(({ topic, messages }) => ({
        topic,
        messages: messages.filter((m) => !written.has(keyOf(topic, m.partition as number))),
      }))
      .filter((t) => t.messages.length > 0);
    if (pending.length === 0) break;
    const missing = pending.map(
      (t) => `${t.topic}[${[...new Set(t.messages.map((m) => m.partition))].join(',')}]`,
    );
    if (attempt >= attempts) {
      throw new KafkaError(
        `Kafka failed while ${options.action}: partitions ${missing.join(' ')} were not acknowledged after ${attempts} attempts`,
        true,
      );
    }
    logger.warn(
      `Kafka left partitions ${missing.join(' ')} unwritten (a leader changed mid-send); sending them again`,
    );
    await sleep(backoffMs * attempt);
  }
  return results;
}

/** The partition count of each topic, for assignPartitions (a missing topic fails here, before any send). */
export async function partitionCounts(
  kafka: Kafka,
  brokers: string[],
  topics: string[],
): Promise<Map<string, number>> {
  return withAdmin(kafka, brokers, async (admin) => {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      return new Map(metadata.topics.map((t) => [t.name, Math.max(1, t.partitions.length)]));
    } catch (err) {
      throw toKafkaError(err, brokers, `looking up topics ${topics.join(', ')}`);
    }
  });
}
