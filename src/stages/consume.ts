import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { DeadLetterProducer, type DeadLetter } from '../connectors/dead-letter.js';
import { toKafkaError } from '../connectors/kafka.js';
import type { AnalyticsSink } from '../connectors/sink.js';
import { ExitCode, InterruptedError, SyncError, toSyncError, UsageError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
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
import { PendingDeliveries, type OwedCommit } from './consume/pending.js';
import { CONSUME_SETTINGS, DEFAULT_TOPICS } from '../settings/index.js';

export const CONSUME_DEFAULTS = {
  group: CONSUME_SETTINGS.group.default,
  batchSize: CONSUME_SETTINGS.batchSize.default,
  idleTimeoutMs: CONSUME_SETTINGS.idleTimeout.default * 1000,
  shutdownTimeoutMs: CONSUME_SETTINGS.shutdownTimeout.default * 1000,
  leaseMs: 60_000,
  sessionTimeoutMs: CONSUME_SETTINGS.sessionTimeout.default * 1000,
  maxDeliveryDelayMs: CONSUME_SETTINGS.maxDeliveryDelay.default * 1000,
  /** Dirty marks per delivery round before a drain is due regardless of age, in Analytics batches. */
  backlogBatches: 20,
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
  /** Stops the run: the batch in flight is finished, what was merged delivered and committed first. */
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * --once: give up (exit 75) when neither this instance nor the group made progress for this long
   * although the end offsets seen at start are not reached.
   */
  idleTimeoutMs?: number;
  /**
   * How long a stop may wait for the batch in flight and the delivery of what was merged before
   * giving up on them (what is not committed is read again by the next run).
   */
  shutdownTimeoutMs?: number;
  /**
   * Kafka's session timeout: how long the group waits for a silent member (a killed instance)
   * before giving its partitions to others.
   */
  sessionTimeoutMs?: number;
  /** How long a claim on dirty customers lasts without renewal before another instance may take them. */
  leaseMs?: number;
  /**
   * Deferred delivery: merged Kafka batches wait at most this long for the drain that delivers the
   * customers they marked (and commits their offsets). 0 delivers after every batch.
   */
  maxDeliveryDelayMs?: number;
  /**
   * Deferred delivery: a drain is also due once this many customer marks were set since the last
   * one (default `backlogBatches` × `batchSize`).
   */
  deliveryBacklog?: number;
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
  /** The error the run stopped on; printed by --json as {code, message, hint, retryable, exitCode}. */
  error: SyncError | null;
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
 * Per Kafka batch: decode (invalid messages → dead-letter topic) and merge in the state store,
 * marking affected customers dirty in the same transaction. Delivery is deferred: the outbox is
 * drained when that is due — enough marks, the oldest undelivered merge `maxDeliveryDelayMs` old,
 * this instance's partitions read to the --once end offsets, a stop, a rebalance taking partitions
 * away — not after every batch, so a customer whose products arrive a few batches later is
 * delivered once, complete. A batch's offset is committed only by a drain that delivered or
 * dead-lettered every mark in the outbox when it started (src/stages/consume/pending.ts). With
 * --once, this instance's product partitions are read to their end offsets before its customer
 * partitions, so an initial load finds its products known.
 *
 * A crash anywhere leaves either an uncommitted offset (the batch is read again; merges are
 * idempotent) or a dirty mark (delivered by the next drain); Analytics' idempotency keys absorb the
 * resends.
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
  const maxDeliveryDelayMs = options.maxDeliveryDelayMs ?? CONSUME_DEFAULTS.maxDeliveryDelayMs;
  if (!Number.isFinite(maxDeliveryDelayMs) || maxDeliveryDelayMs < 0) {
    throw new UsageError(`--max-delivery-delay must be ≥ 0 seconds, got ${maxDeliveryDelayMs / 1000}`);
  }
  const deliveryBacklog = options.deliveryBacklog ?? batchSize * CONSUME_DEFAULTS.backlogBatches;
  if (!Number.isInteger(deliveryBacklog) || deliveryBacklog < 1) {
    throw new UsageError(`the delivery backlog must be ≥ 1 customer, got ${deliveryBacklog}`);
  }
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

  const deadLetters = new DeadLetterProducer(
    options.kafka,
    options.brokers,
    topics.deadLetter,
    group,
    logger,
  );
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
    const pending = new PendingDeliveries();
    const dueLimits = { backlog: deliveryBacklog, maxDelayMs: maxDeliveryDelayMs };
    const noHeartbeat = async () => {};

    /**
     * Drains until `gen` is delivered. Without --once a transient Analytics or Kafka failure is waited
     * out (with heartbeats, so the group keeps the partition); with --once it ends the run (exit 75).
     */
    const drainWithRetry = async (gen: number | null, heartbeat: () => Promise<void>, retry: boolean) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await drainer.drain({ gen, heartbeat, cancelled: () => forced });
          return;
        } catch (err) {
          if (!retry || once || !isTransient(err) || stopRequested) throw err;
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
    /** What this instance committed, per partition. */
    const positions = new Map<PartitionId, bigint>();
    /** How far this instance merged each partition (the next offset), committed or not. */
    const reached = new Map<PartitionId, bigint>();
    const isDone = () => {
      for (const [id, ends] of targets) {
        if (ends.high <= ends.low) continue;
        const mine = positions.get(id) ?? -1n;
        const theirs = positionOf(ends, committed.get(id));
        if ((mine > theirs ? mine : theirs) < ends.high) return false;
      }
      return true;
    };
    /** --once: merged here, or committed by anyone, up to the end offset seen at start. */
    const readToTarget = (id: PartitionId) => {
      const ends = targets.get(id);
      if (ends === undefined || ends.high <= ends.low) return true;
      const candidates = [reached.get(id), positions.get(id), positionOf(ends, committed.get(id))];
      return candidates.some((p) => p !== undefined && p >= ends.high);
    };
    /** This instance's partitions (of one topic, or all) since the last rebalance. */
    let assigned: { topic: string; partition: number }[] = [];
    const assignedRead = (topic?: string) =>
      assigned
        .filter((p) => topic === undefined || p.topic === topic)
        .every((p) => readToTarget(partitionId(p.topic, p.partition)));

    const drainDue = () =>
      pending.due(dueLimits) || (!pending.idle && (stopRequested || (once && assignedRead())));

    const noteMerged = (topic: string, partition: number, next: bigint, marks: number) => {
      const id = partitionId(topic, partition);
      if (next > (reached.get(id) ?? -1n)) reached.set(id, next);
      // Read again after a rebalance, below what this instance committed already: nothing is owed.
      const mine = positions.get(id);
      pending.merged(topic, partition, mine !== undefined && next <= mine ? null : next, marks);
    };

    /** Commits owed offsets; false when Kafka refused (they stay owed, or go with the next rebalance). */
    type Committer = (commits: OwedCommit[]) => Promise<boolean>;
    const byTopic = (commits: OwedCommit[]) => {
      const out = new Map<string, { partition: number; offset: string }[]>();
      for (const c of commits) {
        const list = out.get(c.topic) ?? [];
        list.push({ partition: c.partition, offset: c.offset.toString() });
        out.set(c.topic, list);
      }
      return [...out].map(([topic, partitions]) => ({ topic, partitions }));
    };
    const commitInBatch =
      (payload: EachBatchPayload): Committer =>
      async (commits) => {
        await asGroupCall(() => payload.commitOffsetsIfNecessary({ topics: byTopic(commits) }));
        return true;
      };
    const commitBetweenBatches: Committer = async (commits) => {
      // kafkajs skips commits silently while its consumer restarts; they wait for the next drain.
      if (consumer === undefined || restarting) return false;
      try {
        await consumer.commitOffsets(
          commits.map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset.toString() })),
        );
        return true;
      } catch (err) {
        logger.debug(`could not commit delivered offsets: ${(err as Error).message}`);
        return false;
      }
    };

    /**
     * Delivers every mark in the outbox (anyone's, up to the newest generation: a batch read again
     * after a rebalance marks nothing, yet the marks of its first reading must be delivered before
     * its offset moves), then commits what this instance owes.
     */
    const drainAndCommit = async (heartbeat: () => Promise<void>, commit: Committer, retry: boolean) => {
      if (pending.idle) return;
      const owed = pending.snapshot();
      await drainWithRetry(await store.maxGen(), heartbeat, retry);
      pending.drained();
      if (forced || fatal !== undefined || owed.epoch !== pending.epoch || owed.commits.length === 0) return;
      if (!(await commit(owed.commits))) return;
      pending.committed(owed);
      counters.commits++;
      for (const c of owed.commits) positions.set(partitionId(c.topic, c.partition), c.offset);
      if (once && isDone()) requestStop('end-offsets');
    };

    // --once: customers wait until this instance's product partitions are read to their end
    // offsets, so the customers of an initial load are first delivered with their products known.
    let customersPaused = false;
    const updateProductPhase = () => {
      if (!once || consumer === undefined || stopRequested) return;
      const waiting = !assignedRead(topics.products);
      if (waiting === customersPaused) return;
      if (waiting) consumer.pause([{ topic: topics.customers }]);
      else consumer.resume([{ topic: topics.customers }]);
      customersPaused = waiting;
      logger.debug(waiting ? 'reading products before customers' : 'products read: reading customers');
    };

    if (options.signal?.aborted) requestStop('signal');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    let busy = 0;
    let draining = false;
    let restarting = false;
    /** A rebalance was seen in this generation: batches still queued from the same fetch wait for the rejoin. */
    let rebalancing = false;
    let joined = false;
    let lastActivity = Date.now();
    const groupErrors = new WeakSet<object>();
    const isGroupError = (err: unknown) => err !== null && typeof err === 'object' && groupErrors.has(err);
    const asGroupCall = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        if (err !== null && typeof err === 'object') groupErrors.add(err);
        throw err;
      }
    };

    const handleBatch = async (payload: EachBatchPayload, heartbeat: () => Promise<void>) => {
      const { batch } = payload;
      // A rebalance seen while merging does not stop the batch: merged (and dead-lettered) it is
      // owed like any other, and the hand-over below may still deliver and commit it.
      let revoked: unknown;
      const mergeHeartbeat = async () => {
        try {
          await heartbeat();
        } catch (err) {
          if (!isGroupError(err)) throw err;
          revoked ??= err;
        }
      };
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
      let marks = 0;
      for (let i = 0; i < items.length; i += MERGE_CHUNK) {
        const result = await store.mergeBatch(items.slice(i, i + MERGE_CHUNK));
        for (const outcome of result.outcomes) {
          if (outcome === 'applied') counters.merged++;
          else if (outcome === 'unchanged') counters.unchanged++;
          else counters.stale++;
        }
        counters.dirtied += result.dirtied;
        marks += result.dirtied;
        await mergeHeartbeat();
      }
      if (letters.length > 0) {
        await deadLetters.send(letters);
        counters.deadLetteredMessages += letters.length;
        logger.warn(
          `${letters.length} invalid message(s) from ${batch.topic}[${batch.partition}] went to the dead-letter topic`,
        );
      }
      // A partition taken away mid-batch (rebalance) is read again by its new owner.
      if (forced || fatal !== undefined || payload.isStale()) return;
      // The fetch position moves on now; the commit waits for the drain that delivers these marks.
      const last = batch.messages[batch.messages.length - 1];
      if (last) payload.resolveOffset(last.offset);
      noteMerged(batch.topic, batch.partition, BigInt(batch.lastOffset()) + 1n, marks);
      if (revoked !== undefined) throw revoked;
      if (drainDue()) await drainAndCommit(heartbeat, commitInBatch(payload), true);
      updateProductPhase();
    };

    /**
     * A rebalance is taking partitions away (kafkajs has no revocation hook; a heartbeat in a batch
     * is where it shows): deliver and commit what is owed while the group still accepts this
     * generation's commits, so the next owner does not read it again. One attempt, no retries:
     * what fails stays in the outbox and uncommitted.
     */
    const beforeRevocation = async (payload: EachBatchPayload) => {
      if (pending.idle || forced || fatal !== undefined) return;
      logger.debug('the group is rebalancing: delivering and committing what was read before rejoining');
      try {
        await drainAndCommit(noHeartbeat, commitInBatch(payload), false);
      } catch (err) {
        logger.debug(`could not deliver and commit before the rebalance: ${(err as Error).message}`);
      }
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
        // Offsets owed from the previous generation are not committed here any more: whoever owns
        // those partitions now reads them again, and the next drain delivers their marks first.
        pending.newEpoch();
        rebalancing = false;
        restarting = false;
        assigned = Object.entries(event.payload.memberAssignment).flatMap(([topic, partitions]) =>
          partitions.map((partition) => ({ topic, partition })),
        );
        logger.debug(
          `joined group ${group}: ${assigned.map((p) => `${p.topic}[${p.partition}]`).join(' ') || 'no partitions'}`,
        );
        updateProductPhase();
      });
      c.on(c.events.REBALANCING, () => {
        lastActivity = Date.now();
      });
      c.on(c.events.CRASH, (event) => {
        const { error, restart } = event.payload;
        if (restart) {
          restarting = true;
          logger.warn(`Kafka consumer restarting after: ${error.message}`);
        } else fail(toKafkaError(error, options.brokers, 'consuming'));
      });
      c.on(c.events.END_BATCH_PROCESS, (event) => {
        lastActivity = Date.now();
        const { topic, partition, batchSize: size, firstOffset, lastOffset } = event.payload;
        // A fetch holding only control records (transaction markers) never reaches eachBatch; owe
        // its offsets like a merged batch's, or "drain to the end" would never end.
        if (size !== 0 || fatal !== undefined || forced || firstOffset === null) return;
        const id = partitionId(topic, partition);
        void mutex
          .run(async () => {
            if (stopRequested || fatal !== undefined || forced) return;
            const known = reached.get(id) ?? positions.get(id) ?? committed.get(id);
            if (known !== undefined && BigInt(firstOffset) > known) return;
            noteMerged(topic, partition, BigInt(lastOffset) + 1n, 0);
            if (drainDue()) await drainAndCommit(noHeartbeat, commitBetweenBatches, false);
            updateProductPhase();
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
          // After a stop, batches are left unread (and uncommitted) for the next run; during a
          // rebalance, for whoever owns their partition next.
          if (fatal !== undefined || forced || stopRequested || rebalancing) return;
          busy++;
          lastActivity = Date.now();
          // Heartbeats keep flowing while the batch waits for a drain between batches and while a
          // slow delivery (retries, Retry-After) runs, so the group does not evict this member; a
          // rebalance seen there surfaces at the next checkpoint.
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
            await mutex.run(async () => {
              if (fatal !== undefined || forced) return;
              try {
                await handleBatch(payload, heartbeat);
              } catch (err) {
                if (isGroupError(err)) {
                  rebalancing = true;
                  await beforeRevocation(payload);
                }
                throw err;
              }
            });
          } catch (err) {
            // Rebalances and lost membership are kafkajs's to handle (it rejoins); what was not
            // committed is read again, and what it merged is still in the outbox.
            if (isGroupError(err)) throw err;
            fail(err);
          } finally {
            clearInterval(keepalive);
            busy--;
            lastActivity = Date.now();
          }
        },
      });

      /** Between batches (none in flight): the timed drain, when one is due. */
      const drainIdle = (what: () => Promise<void>) => {
        if (stopRequested || busy > 0 || draining) return;
        draining = true;
        void mutex
          .run(async () => {
            if (stopRequested || busy > 0 || fatal !== undefined || forced || rebalancing) return;
            await what();
          })
          .catch((err: unknown) => {
            if (!once && isTransient(err) && !stopRequested)
              logger.warn(`${(err as Error).message}; will retry`);
            else fail(err);
          })
          .finally(() => {
            draining = false;
            lastActivity = Date.now();
          });
      };
      timers.push(
        setInterval(() => {
          if (drainDue()) drainIdle(() => drainAndCommit(noHeartbeat, commitBetweenBatches, true));
        }, 250),
      );

      if (once) {
        timers.push(
          setInterval(() => {
            if (stopRequested) return;
            void fetchCommitted(admin, group, dataTopics)
              .then((fresh) => {
                // Another instance's progress counts as activity: the group is moving.
                for (const [id, offset] of fresh) if (committed.get(id) !== offset) lastActivity = Date.now();
                committed = fresh;
                // Product partitions another instance finished before this one got them.
                updateProductPhase();
                if (isDone()) requestStop('end-offsets');
                // Deferred delivery: another instance commits only when its drain is due.
                else if (
                  joined &&
                  busy === 0 &&
                  !draining &&
                  Date.now() - lastActivity > idleTimeoutMs + maxDeliveryDelayMs
                ) {
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
        // Pick up outbox rows nobody is delivering (an instance died, or a rebalance cut a drain
        // short) while this instance has nothing of its own waiting: one delivery round at a time so
        // batches are not held up.
        timers.push(
          setInterval(() => {
            if (!pending.idle) return;
            drainIdle(async () => {
              if (!pending.idle) return;
              const claims = await store.pendingTotal();
              if (claims > 0) await drainer.drain({ gen: null, heartbeat: noHeartbeat, maxRounds: 1 });
            });
          }, 2_000),
        );
      }

      await stopSignal;
      for (const t of timers.splice(0)) clearInterval(t);
      // Deliver what was merged and commit it (a batch in flight does so itself), then leave the
      // group; bounded so a stuck delivery cannot keep a stopping process alive.
      const finishing = (async () => {
        if (fatal === undefined) {
          try {
            c.pause(dataTopics.map((topic) => ({ topic })));
          } catch (err) {
            logger.debug(`could not pause fetching: ${(err as Error).message}`);
          }
          await mutex.run(() => drainAndCommit(noHeartbeat, commitBetweenBatches, false)).catch(fail);
        }
        await c.disconnect().catch(() => {});
        return false;
      })();
      const timedOut = await Promise.race([finishing, sleep(shutdownTimeoutMs).then(() => true)]);
      consumer = undefined;
      if (timedOut) {
        forced = true;
        fatal ??= new InterruptedError(
          `deliveries in flight did not finish within ${shutdownTimeoutMs / 1000} s of stopping; what they cover was not committed and will be read again`,
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
    error: error ?? null,
    exitCode,
  };
}
