import type { Admin } from 'kafkajs';
import { DeadLetterProducer } from '../connectors/dead-letter.js';
import { toKafkaError } from '../connectors/kafka.js';
import { InterruptedError, UsageError } from '../errors.js';
import { silentLogger } from '../log.js';
import { MergeStore, newOwnerId } from '../state/merge-store.js';
import { BatchHandler } from './consume/batch.js';
import { DeliveryScheduler } from './consume/delivery.js';
import { Drainer } from './consume/drain.js';
import { EndOffsets, watchGroupProgress } from './consume/end-offsets.js';
import { GroupMembership } from './consume/membership.js';
import { Mutex } from './consume/mutex.js';
import { resolveSettings } from './consume/options.js';
import { PendingDeliveries } from './consume/pending.js';
import { RunControl } from './consume/run-control.js';
import { retryWhileCoordinatorStarts, startupFailure } from './consume/startup-retry.js';
import { leftAfterRun, summarize } from './consume/summary.js';
import { newCounters, type ConsumeOptions, type ConsumeSummary } from './consume/types.js';

export { CONSUME_DEFAULTS } from './consume/types.js';
export type {
  ConsumeOptions,
  ConsumeProgress,
  ConsumeStatus,
  ConsumeSummary,
  FinishReason,
} from './consume/types.js';

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
      ...(options.maxRecordBytes === undefined ? {} : { maxRecordBytes: options.maxRecordBytes }),
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
      const progress = options.onProgress;
      if (progress) {
        timers.push(
          setInterval(
            () =>
              progress({
                consumed: counters.consumed,
                delivered: counters.delivered,
                deadLettered: counters.deadLetteredMessages + counters.deadLetteredRecords,
                lagLeft: offsets.left(),
              }),
            500,
          ),
        );
      }
      if (once) {
        timers.push(
          watchGroupProgress(offsets, {
            admin,
            group,
            topics: dataTopics,
            control,
            membership: member,
            delivery,
            idleTimeoutMs: s.idleTimeoutMs,
            maxDeliveryDelayMs: s.maxDeliveryDelayMs,
            sessionTimeoutMs: s.sessionTimeoutMs,
            logger,
          }),
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
