import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { toKafkaError } from '../../connectors/kafka.js';
import { UsageError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { OffsetRange } from './filter.js';
import { toStoredLetter, type StoredLetter } from './letter.js';

export interface ScanOptions {
  kafka: Kafka;
  brokers: string[];
  topic: string;
  /** Where to start reading each partition (what lies below cannot match). */
  offsets?: OffsetRange[];
  logger?: Logger;
  /** How long reading may take without any progress before it counts as stuck. */
  idleTimeoutMs?: number;
}

/** Partitions of the dead-letter topic with their end offsets when the scan started. */
export type Ends = Map<number, { low: bigint; high: bigint }>;

function startOf(ranges: OffsetRange[] | undefined, partition: number, low: bigint): bigint {
  if (ranges === undefined || ranges.length === 0) return low;
  let start: bigint | null = null;
  for (const r of ranges) {
    if (r.partition !== null && r.partition !== partition) continue;
    const from = r.from ?? low;
    if (start === null || from < start) start = from;
  }
  // No range names this partition: nothing in it can match, so it is read from its end.
  if (start === null) return -1n;
  return start > low ? start : low;
}

/**
 * Reads the dead-letter topic up to the end offsets seen at start, handing each letter to `onLetter`
 * (return false to stop early). The consumer group is private and throw-away and never commits, so
 * reading changes nothing on the broker that anyone else sees.
 */
export async function scanDeadLetters(
  options: ScanOptions,
  onLetter: (letter: StoredLetter) => boolean | void,
): Promise<Ends> {
  const logger = options.logger ?? silentLogger;
  const admin = options.kafka.admin();
  let ends: Ends;
  try {
    await admin.connect();
    const topics = await admin.listTopics();
    if (!topics.includes(options.topic)) {
      throw new UsageError(`the dead-letter topic ${options.topic} does not exist`, {
        hint: 'name it with --dlq-topic (or run `syncctl topics ensure`)',
      });
    }
    const offsets = await admin.fetchTopicOffsets(options.topic);
    ends = new Map(offsets.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]));
  } catch (err) {
    throw toKafkaError(err, options.brokers, `reading the offsets of ${options.topic}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  const remaining = new Map<number, bigint>();
  const seeks: { partition: number; offset: bigint }[] = [];
  for (const [partition, { low, high }] of ends) {
    const start = startOf(options.offsets, partition, low);
    if (start < 0n || start >= high) continue;
    remaining.set(partition, high);
    if (start > low) seeks.push({ partition, offset: start });
  }
  if (remaining.size === 0) return ends;

  const groupId = `syncctl-replay-dlq-${randomUUID()}`;
  const consumer: Consumer = options.kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
  });
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    let stopped = false;
    let failed: unknown;
    let lastProgress = Date.now();
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, isRunning, isStale }) => {
        const end = remaining.get(batch.partition);
        if (end === undefined || stopped) return;
        lastProgress = Date.now();
        try {
          for (const message of batch.messages) {
            if (!isRunning() || isStale() || stopped) return;
            if (BigInt(message.offset) >= end) break;
            if (onLetter(toStoredLetter(batch.partition, message)) === false) {
              stopped = true;
              finish();
              return;
            }
          }
        } catch (err) {
          failed = err;
          stopped = true;
          finish();
          return;
        }
        if (BigInt(batch.lastOffset()) + 1n >= end) remaining.delete(batch.partition);
        if (remaining.size === 0) finish();
      },
    });
    for (const s of seeks)
      consumer.seek({ topic: options.topic, partition: s.partition, offset: s.offset.toString() });
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > idleTimeoutMs) {
        failed ??= toKafkaError(
          new Error(`no progress for ${idleTimeoutMs / 1000} s`),
          options.brokers,
          `reading ${options.topic}`,
        );
        finish();
      }
    }, 500);
    try {
      await finished;
    } finally {
      clearInterval(watchdog);
    }
    if (failed !== undefined) throw failed;
    logger.debug(`read ${options.topic} to its end offsets`);
  } catch (err) {
    throw toKafkaError(err, options.brokers, `reading ${options.topic}`);
  } finally {
    await consumer.disconnect().catch(() => {});
    await forgetGroup(options.kafka, groupId, logger);
  }
  return ends;
}

/** Deletes the throw-away group (it holds no offsets), so reading leaves no trace in the group list. */
async function forgetGroup(kafka: Kafka, groupId: string, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch (err) {
    logger.debug(`could not delete the reader group ${groupId}: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
