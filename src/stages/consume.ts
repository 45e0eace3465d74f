import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { DeadLetterProducer, type DeadLetter } from '../connectors/dead-letter.js';
import { toKafkaError } from '../connectors/kafka.js';
import type { AnalyticsSink } from '../connectors/sink.js';
import { ExitCode, InterruptedError, SyncError, toSyncError, UsageError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../redact.js';
import type { Entity } from '../records/envelope.js';
import type { Db } from '../state/db.js';
import { MergeStore, newOwnerId, type MergeItem } from '../state/merge-store.js';
import { decodeMessage } from './consume/decode.js';
import { Drainer, type DrainCounters } from './consume/drain.js';
import { Mutex } from './consume/mutex.js';
import {
  fetchCommitted,
  fetchEnds,
  lagOf,
  partitionId,
  positionOf,
  type LagReport,
  type PartitionEnds,
  type PartitionId,
} from './consume/offsets.js';
import { DEFAULT_TOPICS } from './topics.js';

export const CONSUME_DEFAULTS = {
  group: 'syncctl',
  batchSize: 250,
  idleTimeoutMs: 60_000,
  shutdownTimeoutMs: 30_000,
  leaseMs: 60_000,
  sessionTimeoutMs: 30_000,
} as const;

export interface ConsumeOptions {
  kafka: Kafka;
  brokers: string[];
  /** The state store (merge tables, outbox, ledger). Opened and closed by the caller. */
  db: Db;
  sink: AnalyticsSink;
  group?: string;
  customerTopic?: string;
  productTopic?: string;
  deadLetterTopic?: string;
  /** Drain to the end offsets seen at start, then finish (cron). Otherwise run until `signal`. */
  once?: boolean;
  /** Unified records per Analytics request. */
  batchSize?: number;
  /** Where customer records list product ids (default `productIds`). */
  productRefPath?: string;
  /** Stops the run: the batch in flight is finished and committed first. */
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * --once: give up (exit 75) when neither this instance nor the group made progress for this long
   * although the end offsets seen at start are not reached.
   */
  idleTimeoutMs?: number;
  /** How long a stop may wait for the batch in flight before giving up on it (it is then redelivered by the next run). */
  shutdownTimeoutMs?: number;
  /**
   * Kafka's session timeout: how long the group waits for a silent member (a killed instance)
   * before giving its partitions to others.
   */
  sessionTimeoutMs?: number;
  /** How long a claim on dirty customers lasts without renewal before another instance may take them. */
  leaseMs?: number;
}

export type ConsumeStatus = 'completed' | 'stopped' | 'failed';
export type FinishReason = 'end-offsets' | 'idle-timeout' | 'signal' | 'error';

export interface ConsumeSummary {
  group: string;
  topics: { customers: string; products: string; deadLetter: string };
  once: boolean;
  status: ConsumeStatus;
  finishedBy: FinishReason;
  /** Kafka messages read from the data topics. */
  consumed: number;
  /** Of those, tombstones (null values: deletes). */
  tombstones: number;
  /** Envelopes that changed the merged state. */
  merged: number;
  /** Versions already merged (replays, re-fetches of unchanged data). */
  unchanged: number;
  /** Older versions ignored because a newer one is merged. */
  stale: number;
  /** Customer dirty marks set (a product change marks every customer referencing it). */
  dirtied: number;
  /** Unified records (and deletes) Analytics acknowledged. */
  delivered: number;
  /** Unified records not sent because Analytics already has that exact version. */
  skippedDuplicate: number;
  /** Everything dead-lettered: invalid messages plus records Analytics refused. */
  deadLettered: number;
  deadLetteredMessages: number;
  deadLetteredRecords: number;
  /** Analytics request retries (inside the sink). */
  retries: number;
  sinkBatches: number;
  commits: number;
  /** Messages on the data topics not yet committed by the group, at the end. */
  lagLeft: LagReport | null;
  /** Customers still waiting in the outbox at the end (delivered by the next run). */
  pendingDeliveries: number | null;
  durationMs: number;
  error: { code: string; message: string; hint?: string; retryable: boolean } | null;
  exitCode: ExitCode;
}

const MERGE_CHUNK = 500;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function checkTopics(admin: Admin, brokers: string[], topics: string[]): Promise<void> {
  let existing: Set<string>;
  try {
    existing = new Set(await admin.listTopics());
  } catch (err) {
    throw toKafkaError(err, brokers, 'listing topics');
  }
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    throw new UsageError(
      `topic${missing.length > 1 ? 's' : ''} ${missing.map((t) => `"${t}"`).join(', ')} do${missing.length > 1 ? '' : 'es'} not exist`,
      {
        hint: 'create them with `syncctl topics ensure`',
      },
    );
  }
}

/** Errors from the transient side (Analytics or Kafka unavailable) that a later attempt may get past. */
function isTransient(err: unknown): boolean {
  return err instanceof SyncError && err.retryable;
}

/**
 * consume: both data topics → merge → outbox → Analytics, as one consumer group member.
 *
 * Per Kafka batch: decode (invalid messages → dead-letter topic), merge in the state store (marking
 * affected customers dirty in the same transaction), drain the outbox until this batch's marks are
 * delivered or dead-lettered, and only then commit offset+1. A crash anywhere leaves either an
 * uncommitted offset (the batch is read again; merges are idempotent) or a dirty mark (delivered by
 * the next drain); Analytics' idempotency keys absorb the resends.
 */
export async function consume(options: ConsumeOptions): Promise<ConsumeSummary> {
  const started = Date.now();
  const logger = options.logger ?? silentLogger;
  const group = options.group ?? CONSUME_DEFAULTS.group;
  const topics = {
    customers: options.customerTopic ?? DEFAULT_TOPICS.customers,
    products: options.productTopic ?? DEFAULT_TOPICS.products,
    deadLetter: options.deadLetterTopic ?? DEFAULT_TOPICS.deadLetter,
  };
  if (topics.customers === topics.products)
    throw new UsageError('the customer and product topics must differ');
  if (topics.deadLetter === topics.customers || topics.deadLetter === topics.products) {
    throw new UsageError('the dead-letter topic must differ from the data topics');
  }
  const once = options.once ?? false;
  const batchSize = options.batchSize ?? CONSUME_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError(`--batch-size must be ≥ 1, got ${batchSize}`);
  const idleTimeoutMs = options.idleTimeoutMs ?? CONSUME_DEFAULTS.idleTimeoutMs;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? CONSUME_DEFAULTS.shutdownTimeoutMs;
  const leaseMs = options.leaseMs ?? CONSUME_DEFAULTS.leaseMs;
  const sessionTimeoutMs = options.sessionTimeoutMs ?? CONSUME_DEFAULTS.sessionTimeoutMs;
  if (sessionTimeoutMs < 6_000) throw new UsageError('--session-timeout must be at least 6 seconds');
  const heartbeatIntervalMs = Math.min(3_000, Math.floor(sessionTimeoutMs / 3));
  const dataTopics = [topics.customers, topics.products];
  const entityOf: Record<string, Entity> = { [topics.customers]: 'customer', [topics.products]: 'product' };

  const store = await MergeStore.open(options.db, {
    ...(options.productRefPath ? { productRefPath: options.productRefPath } : {}),
  });
  const admin = options.kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    throw toKafkaError(err, options.brokers, 'connecting');
  }

  const counters: DrainCounters & {
    consumed: number;
    tombstones: number;
    merged: number;
    unchanged: number;
    stale: number;
    dirtied: number;
    deadLetteredMessages: number;
    commits: number;
  } = {
    consumed: 0,
    tombstones: 0,
    merged: 0,
    unchanged: 0,
    stale: 0,
    dirtied: 0,
    delivered: 0,
    skippedDuplicate: 0,
    deadLetteredRecords: 0,
    deadLetteredMessages: 0,
    retries: 0,
    sinkBatches: 0,
    commits: 0,
  };
  let fatal: SyncError | undefined;
  let finishedBy: FinishReason | undefined;
  let forced = false;
  let stopRequested = false;
  let resolveStop: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => (resolveStop = resolve));
  const requestStop = (why: FinishReason) => {
    finishedBy ??= why;
    stopRequested = true;
    resolveStop();
  };
  const fail = (err: unknown) => {
    fatal ??= toSyncError(err);
    requestStop('error');
  };
  const onAbort = () => requestStop('signal');

  const deadLetters = new DeadLetterProducer(options.kafka, options.brokers, topics.deadLetter, group);
  let consumer: Consumer | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    await checkTopics(admin, options.brokers, [...dataTopics, topics.deadLetter]);
    await deadLetters.connect();
    const owner = newOwnerId();
    const drainer = new Drainer({
      store,
      sink: options.sink,
      deadLetters,
      owner,
      batchSize,
      leaseMs,
      customerTopic: topics.customers,
      logger,
      counters,
    });
    const mutex = new Mutex();

    /**
     * Drains until `gen` is delivered. Without --once a transient Analytics or Kafka failure is waited
     * out (with heartbeats, so the group keeps the partition); with --once it ends the run (exit 75).
     */
    const drainWithRetry = async (gen: number | null, heartbeat: () => Promise<void>) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await drainer.drain({ gen, heartbeat, cancelled: () => forced });
          return;
        } catch (err) {
          if (once || !isTransient(err) || stopRequested) throw err;
          const delay = Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5)) * (0.8 + Math.random() * 0.4);
          logger.warn(`${(err as Error).message}; retrying delivery in ${(delay / 1000).toFixed(1)} s`);
          const until = Date.now() + delay;
          while (Date.now() < until && !stopRequested) {
            await sleep(Math.min(1_000, until - Date.now()));
            await heartbeat();
          }
          if (stopRequested) throw err;
        }
      }
    };

    // --once bookkeeping: targets are the end offsets now; a partition is done once the group's
    // position (ours or another instance's commit) reaches its target.
    const targets = once ? await fetchEnds(admin, dataTopics) : new Map<PartitionId, PartitionEnds>();
    let committed = once ? await fetchCommitted(admin, group, dataTopics) : new Map<PartitionId, bigint>();
    const positions = new Map<PartitionId, bigint>();
    const isDone = () => {
      for (const [id, ends] of targets) {
        if (ends.high <= ends.low) continue;
        const mine = positions.get(id) ?? -1n;
        const theirs = positionOf(ends, committed.get(id));
        if ((mine > theirs ? mine : theirs) < ends.high) return false;
      }
      return true;
    };

    if (options.signal?.aborted) requestStop('signal');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    let busy = 0;
    let joined = false;
    let lastActivity = Date.now();
    const groupErrors = new WeakSet<object>();
    const asGroupCall = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        if (err !== null && typeof err === 'object') groupErrors.add(err);
        throw err;
      }
    };

    const processBatch = async (payload: EachBatchPayload) => {
      // Heartbeats keep flowing while a slow delivery (retries, Retry-After) runs, so the group does
      // not evict this member mid-batch; a rebalance seen there surfaces at the next checkpoint.
      let groupError: unknown;
      const keepalive = setInterval(() => {
        payload.heartbeat().catch((err: unknown) => {
          if (err !== null && typeof err === 'object') groupErrors.add(err);
          groupError ??= err;
        });
      }, heartbeatIntervalMs);
      const heartbeat = async () => {
        if (groupError !== undefined) throw groupError;
        await asGroupCall(() => payload.heartbeat());
      };
      try {
        await handleBatch(payload, heartbeat);
      } finally {
        clearInterval(keepalive);
      }
    };

    const handleBatch = async (payload: EachBatchPayload, heartbeat: () => Promise<void>) => {
      const { batch } = payload;
      const entity = entityOf[batch.topic];
      if (entity === undefined) return;
      const items: MergeItem[] = [];
      const letters: DeadLetter[] = [];
      for (const message of batch.messages) {
        const decoded = decodeMessage(batch.topic, batch.partition, message, entity);
        if (decoded.kind === 'merge') {
          items.push(decoded.item);
          if (decoded.item.envelope === null) counters.tombstones++;
        } else letters.push(decoded.letter);
      }
      counters.consumed += batch.messages.length;
      let maxGen: number | null = null;
      for (let i = 0; i < items.length; i += MERGE_CHUNK) {
        const result = await store.mergeBatch(items.slice(i, i + MERGE_CHUNK));
        for (const outcome of result.outcomes) {
          if (outcome === 'applied') counters.merged++;
          else if (outcome === 'unchanged') counters.unchanged++;
          else counters.stale++;
        }
        counters.dirtied += result.dirtied;
        if (result.gen !== null) maxGen = maxGen === null ? result.gen : Math.max(maxGen, result.gen);
        await heartbeat();
      }
      if (letters.length > 0) {
        await deadLetters.send(letters);
        counters.deadLetteredMessages += letters.length;
        logger.warn(
          `${letters.length} invalid message(s) from ${batch.topic}[${batch.partition}] went to the dead-letter topic`,
        );
      }
      await drainWithRetry(maxGen, heartbeat);
      // A partition taken away mid-batch (rebalance) is committed by its new owner, not here.
      if (forced || fatal !== undefined || payload.isStale()) return;
      const last = batch.messages[batch.messages.length - 1];
      if (last) payload.resolveOffset(last.offset);
      const next = BigInt(batch.lastOffset()) + 1n;
      await asGroupCall(() =>
        payload.commitOffsetsIfNecessary({
          topics: [
            { topic: batch.topic, partitions: [{ partition: batch.partition, offset: next.toString() }] },
          ],
        }),
      );
      counters.commits++;
      positions.set(partitionId(batch.topic, batch.partition), next);
      if (once && isDone()) requestStop('end-offsets');
    };

    if (once && isDone()) {
      requestStop('end-offsets');
    } else if (!stopRequested) {
      const c = options.kafka.consumer({
        groupId: group,
        sessionTimeout: sessionTimeoutMs,
        rebalanceTimeout: 60_000,
        heartbeatInterval: heartbeatIntervalMs,
        maxWaitTimeInMs: once ? 500 : 2_000,
        allowAutoTopicCreation: false,
        // With --once a consumer that cannot reach Kafka ends the run (exit 75) instead of restarting forever.
        retry: { retries: 5, restartOnFailure: async () => !once },
      });
      consumer = c;
      c.on(c.events.GROUP_JOIN, (event) => {
        joined = true;
        lastActivity = Date.now();
        const assigned = Object.entries(event.payload.memberAssignment)
          .map(([topic, partitions]) => `${topic}[${partitions.join(',')}]`)
          .join(' ');
        logger.debug(`joined group ${group}: ${assigned || 'no partitions'}`);
      });
      c.on(c.events.REBALANCING, () => {
        lastActivity = Date.now();
      });
      c.on(c.events.CRASH, (event) => {
        const { error, restart } = event.payload;
        if (restart) logger.warn(`Kafka consumer restarting after: ${error.message}`);
        else fail(toKafkaError(error, options.brokers, 'consuming'));
      });
      c.on(c.events.END_BATCH_PROCESS, (event) => {
        lastActivity = Date.now();
        const { topic, partition, batchSize: size, firstOffset, lastOffset } = event.payload;
        // A fetch holding only control records (transaction markers) never reaches eachBatch; move
        // past it when everything before it is committed, or "drain to the end" would never end.
        if (size !== 0 || fatal !== undefined || forced || firstOffset === null) return;
        const id = partitionId(topic, partition);
        void mutex
          .run(async () => {
            const known = positions.get(id) ?? committed.get(id);
            if (known !== BigInt(firstOffset)) return;
            const next = BigInt(lastOffset) + 1n;
            await c.commitOffsets([{ topic, partition, offset: next.toString() }]);
            positions.set(id, next);
            if (once && isDone()) requestStop('end-offsets');
          })
          .catch((err: unknown) =>
            logger.debug(`could not commit past control records: ${(err as Error).message}`),
          );
      });
      try {
        await c.connect();
        await c.subscribe({ topics: dataTopics, fromBeginning: true });
      } catch (err) {
        throw toKafkaError(err, options.brokers, 'joining the consumer group');
      }
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async (payload) => {
          if (fatal !== undefined || forced) return;
          busy++;
          lastActivity = Date.now();
          try {
            await mutex.run(() => processBatch(payload));
          } catch (err) {
            // Rebalances and lost membership are kafkajs's to handle (it rejoins); the batch is not
            // committed, and what it merged is still in the outbox.
            if (err !== null && typeof err === 'object' && groupErrors.has(err)) throw err;
            fail(err);
          } finally {
            busy--;
            lastActivity = Date.now();
          }
        },
      });

      if (once) {
        timers.push(
          setInterval(() => {
            if (stopRequested) return;
            void fetchCommitted(admin, group, dataTopics)
              .then((fresh) => {
                // Another instance's progress counts as activity: the group is moving.
                for (const [id, offset] of fresh) if (committed.get(id) !== offset) lastActivity = Date.now();
                committed = fresh;
                if (isDone()) requestStop('end-offsets');
                else if (joined && busy === 0 && Date.now() - lastActivity > idleTimeoutMs) {
                  fail(
                    new InterruptedError(
                      `no progress for ${idleTimeoutMs / 1000} s before reaching the end offsets seen at start (partitions held by an unresponsive instance, or a rebalance that does not finish); rerun to continue`,
                    ),
                  );
                  finishedBy = 'idle-timeout';
                }
              })
              .catch((err: unknown) =>
                logger.debug(`could not read committed offsets: ${(err as Error).message}`),
              );
          }, 1_000),
        );
      } else {
        // Between batches, pick up outbox rows nobody is delivering (an instance died, or a
        // rebalance cut a drain short): one delivery round at a time so batches are not held up.
        timers.push(
          setInterval(() => {
            if (stopRequested || busy > 0) return;
            void mutex
              .run(async () => {
                if (stopRequested || busy > 0) return;
                const claims = await store.pendingTotal();
                if (claims > 0) await drainer.drain({ gen: null, heartbeat: async () => {}, maxRounds: 1 });
              })
              .catch((err: unknown) => {
                if (isTransient(err)) logger.warn(`${(err as Error).message}; will retry`);
                else fail(err);
              });
          }, 2_000),
        );
      }

      await stopSignal;
      for (const t of timers.splice(0)) clearInterval(t);
      // Finish the batch in flight (it commits), leave the group; bounded so a stuck delivery
      // cannot keep a stopping process alive.
      const stopped = c.disconnect().then(
        () => false,
        () => false,
      );
      const timedOut = await Promise.race([stopped, sleep(shutdownTimeoutMs).then(() => true)]);
      consumer = undefined;
      if (timedOut) {
        forced = true;
        fatal ??= new InterruptedError(
          `the batch in flight did not finish within ${shutdownTimeoutMs / 1000} s of stopping; it was not committed and will be read again`,
        );
      }
    }

    if (once && fatal === undefined && !forced && finishedBy !== 'signal') {
      // Leftovers: marks from drains cut short (rebalance, killed instances) are delivered before
      // --once reports success.
      await mutex.run(async () => {
        const horizon = await store.maxGen();
        await drainer.drain({ gen: horizon, heartbeat: async () => {}, cancelled: () => forced });
      });
    }
  } catch (err) {
    fail(err);
  } finally {
    for (const t of timers) clearInterval(t);
    options.signal?.removeEventListener('abort', onAbort);
    if (consumer) await consumer.disconnect().catch(() => {});
    await deadLetters.close();
  }

  if (once && finishedBy === 'signal' && fatal === undefined) {
    fatal = new InterruptedError('stopped before reaching the end offsets seen at start; rerun to continue');
  }

  let lagLeft: LagReport | null = null;
  try {
    lagLeft = lagOf(await fetchEnds(admin, dataTopics), await fetchCommitted(admin, group, dataTopics));
  } catch (err) {
    logger.debug(`could not compute the lag: ${(err as Error).message}`);
  }
  await admin.disconnect().catch(() => {});
  let pendingDeliveries: number | null = null;
  try {
    pendingDeliveries = await store.pendingTotal();
  } catch {
    pendingDeliveries = null;
  }

  const deadLettered = counters.deadLetteredMessages + counters.deadLetteredRecords;
  const error = fatal as SyncError | undefined;
  if (error instanceof UsageError) throw error;
  const exitCode: ExitCode = error ? error.exitCode : deadLettered > 0 ? ExitCode.Partial : ExitCode.Ok;
  return {
    group,
    topics,
    once,
    status: error ? 'failed' : finishedBy === 'signal' ? 'stopped' : 'completed',
    finishedBy: finishedBy ?? 'end-offsets',
    consumed: counters.consumed,
    tombstones: counters.tombstones,
    merged: counters.merged,
    unchanged: counters.unchanged,
    stale: counters.stale,
    dirtied: counters.dirtied,
    delivered: counters.delivered,
    skippedDuplicate: counters.skippedDuplicate,
    deadLettered,
    deadLetteredMessages: counters.deadLetteredMessages,
    deadLetteredRecords: counters.deadLetteredRecords,
    retries: counters.retries,
    sinkBatches: counters.sinkBatches,
    commits: counters.commits,
    lagLeft,
    pendingDeliveries,
    durationMs: Date.now() - started,
    error: error
      ? {
          code: error.code,
          message: redact(error.message),
          ...(error.hint ? { hint: error.hint } : {}),
          retryable: error.retryable,
        }
      : null,
    exitCode,
  };
}
