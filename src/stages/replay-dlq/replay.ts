import type { IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { DeadLetterProducer, type DeadLetter } from '../../connectors/dead-letter.js';
import { createProducer, toKafkaError } from '../../connectors/kafka.js';
import { assignPartitions, partitionCounts, sendEvery } from '../../connectors/kafka-send.js';
import type { AnalyticsSink } from '../../connectors/sink.js';
import { ExitCode, toSyncError, UsageError, type SyncError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { Entity } from '../../records/envelope.js';
import { DEFAULT_TOPICS } from '../../settings/index.js';
import type { Db } from '../../state/db.js';
import { MergeStore, newOwnerId } from '../../state/merge-store.js';
import { ReplayProgress, type ReplayMark } from '../../state/replay-progress.js';
import { decodeMessage } from '../consume/decode.js';
import { Drainer, newDrainCounters, type DrainCounters } from '../consume/drain.js';
import { matches, type LetterFilter } from './filter.js';
import { REPLAY_COUNT_HEADER, type StoredLetter } from './letter.js';
import { scanDeadLetters } from './reader.js';

export interface ReplayOptions {
  kafka: Kafka;
  brokers: string[];
  /** The state store: replay progress, and the merge tables records are re-marked in. */
  db: Db;
  deadLetterTopic?: string;
  customerTopic?: string;
  productTopic?: string;
  /** Named on letters that fail again. */
  group: string;
  filter?: LetterFilter;
  limit?: number;
  /** Plan only: nothing is sent, marked or stored. */
  dryRun?: boolean;
  /** Corrected values by dead-letter position ("partition:offset"): only these letters are replayed. */
  corrections?: Map<string, Buffer | null>;
  /** Deliver re-marked records now (otherwise the next consume does). */
  deliver?: { sink: AnalyticsSink; batchSize: number };
  productRefPath?: string;
  logger?: Logger;
  /** Called per letter read, then per chunk replayed, with the counts so far. */
  onProgress?: (progress: ReplayProgressCounts) => void;
}

export interface ReplayProgressCounts {
  phase: 'reading' | 'replaying' | 'delivering';
  /** Letters of the dead-letter topic read, and of those selected. */
  read: number;
  selected: number;
  replayed: number;
  failedAgain: number;
}

export type ReplayAction =
  /** An invalid message, sent back to its source topic. */
  | 'republish'
  /** A record Analytics refused, marked for delivery again. */
  | 'remark'
  /** Still invalid: back to the dead-letter topic with its attempts raised. */
  | 'fail-again'
  /** Replayed by an earlier run. */
  | 'skip-replayed'
  /** Cannot be replayed as it is (truncated value, unknown kind, no source topic). */
  | 'refuse';

export interface ReplayItem {
  dlq: string;
  kind: StoredLetter['kind'];
  action: ReplayAction;
  /** Where it goes: a topic, the state store, or back to the dead-letter topic. */
  target: string | null;
  key: string | null;
  customerId: string | null;
  corrected: boolean;
  reason: string | null;
}

export interface ReplaySummary {
  deadLetterTopic: string;
  dryRun: boolean;
  selected: number;
  /** Republished to a source topic or re-marked for delivery. */
  replayed: number;
  republished: number;
  remarked: number;
  failedAgain: number;
  /** Replayed by an earlier run, or refused (see items). */
  skipped: number;
  refused: number;
  /** With --deliver: what the drain did with the re-marked records. */
  delivery: (DrainCounters & { pending: number }) | null;
  items: ReplayItem[];
  error: SyncError | null;
  exitCode: ExitCode;
}

const SEND_CHUNK = 100;

function keyText(letter: StoredLetter): string | null {
  return letter.key === null ? (letter.source.key ?? null) : letter.key.toString('utf8');
}

/**
 * Replays dead letters, once. Invalid messages go back to their source topic (original key,
 * headers, value or the corrected one, plus syncctl-replay-count) after the consume stage's own
 * decoder accepts them; ones it still refuses return to the dead-letter topic with their attempts
 * raised. Records Analytics refused are re-marked for delivery in the state store. Each letter's
 * outcome is stored once its effect is durable, so the same replay run again does nothing.
 */
export async function replayDeadLetters(options: ReplayOptions): Promise<ReplaySummary> {
  const logger = options.logger ?? silentLogger;
  const dlqTopic = options.deadLetterTopic ?? DEFAULT_TOPICS.deadLetter;
  const entityOf = new Map<string, Entity>([
    [options.customerTopic ?? DEFAULT_TOPICS.customers, 'customer'],
    [options.productTopic ?? DEFAULT_TOPICS.products, 'product'],
  ]);
  if (entityOf.has(dlqTopic)) throw new UsageError('the dead-letter topic must differ from the data topics');
  const dryRun = options.dryRun ?? false;
  const progress = await ReplayProgress.open(options.db);
  const done = await progress.done(dlqTopic);

  const filter = options.filter ?? {};
  const selected: StoredLetter[] = [];
  let fresh = 0;
  let read = 0;
  const report = (phase: ReplayProgressCounts['phase'], replayed = 0, failedAgain = 0) =>
    options.onProgress?.({ phase, read, selected: selected.length, replayed, failedAgain });
  await scanDeadLetters(
    { kafka: options.kafka, brokers: options.brokers, topic: dlqTopic, offsets: filter.offsets, logger },
    (letter) => {
      read++;
      report('reading');
      if (!matches(filter, letter)) return true;
      if (options.corrections && !options.corrections.has(`${letter.partition}:${letter.offset}`))
        return true;
      // Letters replayed before do not count against --limit, so repeating a limited replay moves on.
      const replayedBefore = done.has(`${letter.partition}:${letter.offset}`);
      if (options.limit !== undefined && !replayedBefore && fresh >= options.limit) return false;
      if (!replayedBefore) fresh++;
      selected.push(letter);
      return true;
    },
  );
  selected.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  if (options.corrections) {
    const found = new Set(selected.map((l) => `${l.partition}:${l.offset}`));
    const missing = [...options.corrections.keys()].filter((k) => !found.has(k));
    if (missing.length > 0) {
      logger.warn(
        `--from-file names ${missing.length} letter(s) not selected in ${dlqTopic}: ${missing.slice(0, 5).join(', ')}`,
      );
    }
  }

  const plans = selected.map((letter) =>
    plan(letter, done.has(`${letter.partition}:${letter.offset}`), entityOf, options.corrections, dlqTopic),
  );
  const summary: ReplaySummary = {
    deadLetterTopic: dlqTopic,
    dryRun,
    selected: selected.length,
    replayed: 0,
    republished: 0,
    remarked: 0,
    failedAgain: 0,
    skipped: 0,
    refused: 0,
    delivery: null,
    items: plans.map((p) => p.item),
    error: null,
    exitCode: ExitCode.Ok,
  };
  const count = () => {
    summary.replayed = summary.republished + summary.remarked;
    summary.skipped = plans.filter(
      (p) => p.item.action === 'skip-replayed' || p.item.action === 'refuse',
    ).length;
    summary.refused = plans.filter((p) => p.item.action === 'refuse').length;
  };
  count();
  if (dryRun) {
    summary.republished = plans.filter((p) => p.item.action === 'republish').length;
    summary.remarked = plans.filter((p) => p.item.action === 'remark').length;
    summary.failedAgain = plans.filter((p) => p.item.action === 'fail-again').length;
    count();
    summary.exitCode = summary.failedAgain + summary.refused > 0 ? ExitCode.Partial : ExitCode.Ok;
    return summary;
  }

  let producer: Producer | undefined;
  const partitionsOf = new Map<string, number>();
  const deadLetters = new DeadLetterProducer(options.kafka, options.brokers, dlqTopic, options.group, logger);
  let deadLettersOpen = false;
  let store: MergeStore | undefined;
  try {
    for (let i = 0; i < plans.length; i += SEND_CHUNK) {
      const chunk = plans.slice(i, i + SEND_CHUNK);
      const republish = chunk.filter((p) => p.item.action === 'republish');
      if (republish.length > 0) {
        if (!producer) {
          producer = createProducer(options.kafka);
          try {
            await producer.connect();
          } catch (err) {
            throw toKafkaError(err, options.brokers, 'connecting the replay producer');
          }
        }
        const byTopic = new Map<string, Message[]>();
        for (const p of republish) {
          const list = byTopic.get(p.item.target as string) ?? [];
          list.push(p.message as Message);
          byTopic.set(p.item.target as string, list);
        }
        const unknown = [...byTopic.keys()].filter((topic) => !partitionsOf.has(topic));
        if (unknown.length > 0) {
          for (const [topic, count] of await partitionCounts(options.kafka, options.brokers, unknown))
            partitionsOf.set(topic, count);
        }
        await sendEvery(
          producer,
          [...byTopic].map(([topic, messages]) => ({
            topic,
            messages: assignPartitions(messages, partitionsOf.get(topic) ?? 1),
          })),
          { brokers: options.brokers, action: 'republishing dead letters', logger },
        );
      }
      const failing = chunk.filter((p) => p.item.action === 'fail-again');
      if (failing.length > 0) {
        if (!deadLettersOpen) {
          await deadLetters.connect();
          deadLettersOpen = true;
        }
        await deadLetters.send(failing.map((p) => p.again as DeadLetter));
      }
      const remark = chunk.filter((p) => p.item.action === 'remark');
      if (remark.length > 0) {
        store ??= await MergeStore.open(
          options.db,
          options.productRefPath ? { productRefPath: options.productRefPath } : {},
        );
        await store.remarkForDelivery(remark.map((p) => p.item.customerId as string));
      }
      const marks: ReplayMark[] = [];
      for (const p of [...republish, ...failing, ...remark]) {
        const [partition, offset] = p.item.dlq.split(':') as [string, string];
        const outcome =
          p.item.action === 'republish'
            ? 'republished'
            : p.item.action === 'remark'
              ? 'remarked'
              : 'failed-again';
        marks.push({ partition: Number(partition), offset, outcome });
      }
      await progress.mark(dlqTopic, marks);
      summary.republished += republish.length;
      summary.failedAgain += failing.length;
      summary.remarked += remark.length;
      count();
      report('replaying', summary.replayed, summary.failedAgain);
    }
    // Also when every letter was re-marked by an earlier run: one killed during its delivery left
    // marks that this run delivers.
    if (
      options.deliver &&
      plans.some((p) => p.item.action === 'remark' || p.item.kind === 'unified-record')
    ) {
      if (!deadLettersOpen) {
        await deadLetters.connect();
        deadLettersOpen = true;
      }
      store ??= await MergeStore.open(
        options.db,
        options.productRefPath ? { productRefPath: options.productRefPath } : {},
      );
      const counters = newDrainCounters();
      const drainer = new Drainer({
        store,
        sink: options.deliver.sink,
        deadLetters,
        owner: newOwnerId(),
        batchSize: options.deliver.batchSize,
        leaseMs: 60_000,
        customerTopic: options.customerTopic ?? DEFAULT_TOPICS.customers,
        logger,
        counters,
        attemptsBefore: new Map(
          plans
            .filter((p) => p.item.action === 'remark')
            .map((p) => [p.item.customerId as string, p.attempts ?? 0] as const)
            .sort((a, b) => a[1] - b[1]),
        ),
      });
      report('delivering', summary.replayed, summary.failedAgain);
      await drainer.drain({ gen: await store.maxGen(), heartbeat: async () => {} });
      summary.delivery = { ...counters, pending: await store.pendingTotal() };
      summary.failedAgain += counters.deadLetteredRecords;
    }
  } catch (err) {
    summary.error = toSyncError(err);
  } finally {
    await producer?.disconnect().catch(() => {});
    await deadLetters.close();
  }
  summary.exitCode = summary.error
    ? summary.error.exitCode
    : summary.failedAgain + summary.refused > 0
      ? ExitCode.Partial
      : ExitCode.Ok;
  return summary;
}

interface Plan {
  item: ReplayItem;
  /** The letter's attempts so far. */
  attempts?: number;
  message?: Message;
  again?: DeadLetter;
}

function plan(
  letter: StoredLetter,
  replayed: boolean,
  entityOf: Map<string, Entity>,
  corrections: Map<string, Buffer | null> | undefined,
  dlqTopic: string,
): Plan {
  const dlq = `${letter.partition}:${letter.offset}`;
  const corrected = corrections?.has(dlq) ?? false;
  const item: ReplayItem = {
    dlq,
    kind: letter.kind,
    action: 'refuse',
    target: null,
    key: keyText(letter),
    customerId: letter.customerId,
    corrected,
    reason: null,
  };
  const refuse = (reason: string): Plan => ({ item: { ...item, action: 'refuse', reason } });
  if (replayed) return { item: { ...item, action: 'skip-replayed', reason: 'replayed by an earlier run' } };
  if (letter.kind === 'unified-record') {
    if (letter.customerId === null) return refuse('no customer id header');
    return {
      item: { ...item, action: 'remark', target: 'state store (delivery outbox)' },
      attempts: letter.attempts,
    };
  }
  if (letter.kind !== 'source-message')
    return refuse('not a syncctl dead letter (no syncctl-dlq-kind header)');
  const topic = letter.source.topic;
  if (topic === null) return refuse('no source topic header');
  if (letter.truncated && !corrected) {
    return refuse(
      `the value was truncated to fit ${dlqTopic} (${letter.originalValueBytes ?? '?'} bytes originally): supply it with --from-file`,
    );
  }
  if (letter.headersDropped && !corrected)
    return refuse('the original key and headers were dropped to fit the dead-letter topic');
  const value = corrected ? (corrections?.get(dlq) ?? null) : letter.value;
  const headers: IHeaders = {
    ...letter.originalHeaders,
    [REPLAY_COUNT_HEADER]: String(letter.replayCount + 1),
  };
  const entity = entityOf.get(topic);
  if (entity !== undefined) {
    // The consume stage's own decoder decides: what it would dead-letter again is not sent.
    const decoded = decodeMessage(
      topic,
      letter.source.partition ?? 0,
      {
        key: letter.key,
        value,
        headers,
        offset: letter.source.offset ?? '0',
        timestamp: letter.source.timestamp ?? '0',
        attributes: 0,
      } as KafkaMessage,
      entity,
    );
    if (decoded.kind === 'dead-letter') {
      return {
        item: { ...item, action: 'fail-again', target: dlqTopic, reason: decoded.letter.error.message },
        again: {
          ...decoded.letter,
          error: {
            ...decoded.letter.error,
            message: `replayed from ${dlqTopic}[${dlq}], still invalid: ${decoded.letter.error.message}`,
          },
          attempts: letter.attempts + 1,
        },
      };
    }
  }
  return {
    item: { ...item, action: 'republish', target: topic },
    message: { key: letter.key, value, headers },
  };
}
