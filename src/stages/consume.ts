import type { Admin } from 'kafkajs';
import { DeadLetterProducer } from '../connectors/dead-letter.js';
import { toKafkaError } from '../connectors/kafka.js';
import { InterruptedError, UsageError } from '../errors.js';
import { silentLogger } from '../log.js';
import { DEFAULT_TOPICS } from '../settings/index.js';
import { MergeStore, newOwnerId } from '../state/merge-store.js';
import { BatchHandler } from './consume/batch.js';
import { DeliveryScheduler } from './consume/delivery.js';
import { Drainer } from './consume/drain.js';
import { EndOffsets } from './consume/end-offsets.js';
import { GroupMembership } from './consume/membership.js';
import { Mutex } from './consume/mutex.js';
import { fetchCommitted } from './consume/offsets.js';
import { PendingDeliveries } from './consume/pending.js';
import { RunControl } from './consume/run-control.js';
import { retryWhileCoordinatorStarts, startupFailure } from './consume/startup-retry.js';
import { leftAfterRun, summarize } from './consume/summary.js';
import {
  CONSUME_DEFAULTS,
  newCounters,
  type ConsumeOptions,
  type ConsumeSummary,
  type ConsumeTopics,
} from './consume/types.js';

export { CONSUME_DEFAULTS } from './consume/types.js';
export type { ConsumeOptions, ConsumeStatus, ConsumeSummary, FinishReason } from './consume/types.js';

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

/** The options with defaults applied; bad values are usage errors before anything connects. */
function resolveSettings(options: ConsumeOptions) {
  const topics: ConsumeTopics = {
    customers: options.customerTopic ?? DEFAULT_TOPICS.customers,
    products: options.productTopic ?? DEFAULT_TOPICS.products,
    deadLetter: options.deadLetterTopic ?? DEFAULT_TOPICS.deadLetter,
  };
  if (topics.customers === topics.products)
    throw new UsageError('the customer and product topics must differ');
  if (topics.deadLetter === topics.customers || topics.deadLetter === topics.products) {
    throw new UsageError('the dead-letter topic must differ from the data topics');
  }
  const batchSize = options.batchSize ?? CONSUME_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError(`--batch-size must be ≥ 1, got ${batchSize}`);
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
  return {
    group: options.group ?? CONSUME_DEFAULTS.group,
    topics,
    dataTopics: [topics.customers, topics.products],
    once: options.once ?? false,
    batchSize,
    idleTimeoutMs: options.idleTimeoutMs ?? CONSUME_DEFAULTS.idleTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? CONSUME_DEFAULTS.shutdownTimeoutMs,
    leaseMs: options.leaseMs ?? CONSUME_DEFAULTS.leaseMs,
    sessionTimeoutMs,
    maxDeliveryDelayMs,
    deliveryBacklog,
    startupRetryMs: options.startupRetryMs ?? CONSUME_DEFAULTS.startupRetryMs,
  };
}

/**
 * consume: both data topics → merge → outbox → Analytics, as one consumer group member.
 *
 * Per Kafka batch: decode (invalid messages → dead-letter topic) and merge in the state store,
 * marking affected customers dirty in the same transaction (consume/batch.ts). Delivery is
 * deferred: the outbox is drained when that is due, not after every batch, so a customer whose
 * products arrive a few batches later is delivered once, complete; a batch's offset is committed
 * only by a drain that delivered or dead-lettered every mark in the outbox when it started
 * (consume/delivery.ts, consume/pending.ts). With --once, this instance's product partitions are
 * read to their end offsets before its customer partitions, so an initial load finds its products
 * known (consume/membership.ts, consume/end-offsets.ts).
 *
 * A crash anywhere leaves either an uncommitted offset (the batch is read again; merges are
 * idempotent) or a dirty mark (delivered by the next drain); Analytics' idempotency keys absorb the
 * resends.
 */
export async function consume(options: ConsumeOptions): Promise<ConsumeSummary> {
  const started = Date.now();
  const logger = options.logger ?? silentLogger;
  const s = resolveSettings(options);
  const { group, topics, dataTopics, once } = s;

  const store = await MergeStore.open(options.db, {
    ...(options.productRefPath ? { productRefPath: options.productRefPath } : {}),
  });
  const admin = options.kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    throw toKafkaError(err, options.brokers, 'connecting');
  }

  const counters = newCounters();
  const control = new RunControl();
  const deadLetters = new DeadLetterProducer(
    options.kafka,
    options.brokers,
    topics.deadLetter,
    group,
    logger,
  );
  let membership: GroupMembership | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    await checkTopics(admin, options.brokers, [...dataTopics, topics.deadLetter]);
    await deadLetters.connect();
    const drainer = new Drainer({
      store,
      sink: options.sink,
      deadLetters,
      owner: newOwnerId(),
      batchSize: s.batchSize,
      leaseMs: s.leaseMs,
      customerTopic: topics.customers,
      logger,
      counters,
    });
    const mutex = new Mutex();
    const pending = new PendingDeliveries();
    // A broker that just started may still be loading the group's offsets: wait for it, bounded.
    const offsets = await retryWhileCoordinatorStarts(() => EndOffsets.open(admin, group, dataTopics, once), {
      timeoutMs: s.startupRetryMs,
      logger,
      action: "reading the group's committed offsets",
    }).catch((err: unknown) => {
      throw startupFailure(err, options.brokers, "reading the group's committed offsets");
    });
    const member = new GroupMembership({
      kafka: options.kafka,
      brokers: options.brokers,
      group,
      topics,
      once,
      sessionTimeoutMs: s.sessionTimeoutMs,
      logger,
      control,
      offsets,
      mutex,
      startupDeadline: started + s.startupRetryMs,
    });
    const delivery = new DeliveryScheduler({
      store,
      drainer,
      pending,
      offsets,
      control,
      membership: member,
      mutex,
      counters,
      once,
      limits: { backlog: s.deliveryBacklog, maxDelayMs: s.maxDeliveryDelayMs },
      logger,
    });
    const batches = new BatchHandler({
      store,
      deadLetters,
      topics,
      counters,
      logger,
      control,
      membership: member,
      delivery,
    });

    control.watch(options.signal);
    if (once && offsets.isDone()) {
      control.requestStop('end-offsets');
    } else if (!control.stopRequested) {
      membership = member;
      await member.join({
        joined: () => pending.newEpoch(),
        batch: (payload, heartbeat) => batches.handle(payload, heartbeat),
        revoked: (payload) => delivery.handOver(payload),
        controlRecords: (topic, partition, first, last) =>
          delivery.controlRecords(topic, partition, first, last),
      });

      timers.push(setInterval(() => delivery.tick(), 250));
      if (once) {
        timers.push(
          setInterval(() => {
            if (control.stopRequested) return;
            void fetchCommitted(admin, group, dataTopics)
              .then((fresh) => {
                // Another instance's progress counts as activity: the group is moving.
                if (offsets.refresh(fresh)) control.touch();
                // Product partitions another instance finished before this one got them.
                member.updateProductPhase();
                if (offsets.isDone()) control.requestStop('end-offsets');
                // Deferred delivery: another instance commits only when its drain is due.
                else if (
                  member.joined &&
                  control.inFlight === 0 &&
                  !delivery.draining &&
                  Date.now() - control.lastActivity > s.idleTimeoutMs + s.maxDeliveryDelayMs
                ) {
                  control.giveUp(
                    new InterruptedError(
                      `no progress for ${s.idleTimeoutMs / 1000} s before reaching the end offsets seen at start (partitions held by an unresponsive instance, or a rebalance that does not finish); rerun to continue`,
                    ),
                    'idle-timeout',
                  );
                }
              })
              .catch((err: unknown) =>
                logger.debug(`could not read committed offsets: ${(err as Error).message}`),
              );
          }, 1_000),
        );
      } else {
        timers.push(setInterval(() => delivery.pickUpOrphans(), 2_000));
      }

      await control.stopped;
      for (const t of timers.splice(0)) clearInterval(t);
      // Deliver what was merged and commit it, then leave the group; bounded so a stuck delivery
      // cannot keep a stopping process alive.
      const finishing = (async () => {
        if (control.fatal === undefined) {
          member.pauseAll();
          await delivery.finish();
        }
        await member.leave();
      })();
      await control.finishWithin(finishing, s.shutdownTimeoutMs);
      member.forget();
      membership = undefined;
    }

    if (once && control.fatal === undefined && !control.forced && control.finishedBy !== 'signal') {
      await delivery.leftovers();
    }
  } catch (err) {
    control.fail(err);
  } finally {
    for (const t of timers) clearInterval(t);
    control.unwatch();
    if (membership) await membership.leave();
    await deadLetters.close();
  }

  if (once && control.finishedBy === 'signal' && control.fatal === undefined) {
    control.fatal = new InterruptedError(
      'stopped before reaching the end offsets seen at start; rerun to continue',
    );
  }

  const left = await leftAfterRun(admin, store, group, dataTopics, logger);
  await admin.disconnect().catch(() => {});
  return summarize({
    group,
    topics,
    once,
    counters,
    fatal: control.fatal,
    finishedBy: control.finishedBy,
    ...left,
    durationMs: Date.now() - started,
  });
}
