import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { toKafkaError } from '../../connectors/kafka.js';
import type { Logger } from '../../log.js';
import type { EndOffsets } from './end-offsets.js';
import type { Mutex } from './mutex.js';
import type { OwedCommit } from './pending.js';
import type { RunControl } from './run-control.js';
import { isCoordinatorNotReady } from './startup-retry.js';
import type { ConsumeTopics } from './types.js';

/** Commits owed offsets; false when Kafka refused (they stay owed, or go with the next rebalance). */
export type Committer = (commits: OwedCommit[]) => Promise<boolean>;

export interface MembershipOptions {
  kafka: Kafka;
  brokers: string[];
  group: string;
  topics: ConsumeTopics;
  once: boolean;
  sessionTimeoutMs: number;
  logger: Logger;
  control: RunControl;
  offsets: EndOffsets;
  mutex: Mutex;
  /** Until when (epoch ms) a consumer that crashes before joining because the coordinator is not ready may restart. */
  startupDeadline: number;
}

/** What the run does with what the group hands this member. */
export interface MembershipHandlers {
  /** A new generation: this member's partitions are in `offsets.assigned`. */
  joined(): void;
  /** Merges one Kafka batch (inside the mutex); `heartbeat` throws once the group is rebalancing. */
  batch(payload: EachBatchPayload, heartbeat: () => Promise<void>): Promise<void>;
  /** A rebalance showed up while handling `payload`: hand over what is owed while this generation may still commit. */
  revoked(payload: EachBatchPayload): Promise<void>;
  /** A fetch held only control records (transaction markers) from `first` to `last`. */
  controlRecords(topic: string, partition: number, first: bigint, last: bigint): void;
}

function byTopic(commits: OwedCommit[]) {
  const out = new Map<string, { partition: number; offset: string }[]>();
  for (const c of commits) {
    const list = out.get(c.topic) ?? [];
    list.push({ partition: c.partition, offset: c.offset.toString() });
    out.set(c.topic, list);
  }
  return [...out].map(([topic, partitions]) => ({ topic, partitions }));
}

/**
 * This instance as a consumer group member: joining, heartbeats while a batch waits or delivers,
 * telling rebalances apart from failures, commits (inside a batch or between batches) and, with
 * --once, holding customers back until this member's product partitions are read.
 */
export class GroupMembership {
  private consumer: Consumer | undefined;
  /** kafkajs is restarting its consumer: commits would be skipped silently. */
  private restarting = false;
  /** A rebalance was seen in this generation: batches still queued from the same fetch wait for the rejoin. */
  rebalancing = false;
  joined = false;
  private customersPaused = false;
  private readonly groupErrors = new WeakSet<object>();
  private readonly heartbeatIntervalMs: number;

  constructor(private readonly o: MembershipOptions) {
    this.heartbeatIntervalMs = Math.min(3_000, Math.floor(o.sessionTimeoutMs / 3));
  }

  private get dataTopics(): string[] {
    return [this.o.topics.customers, this.o.topics.products];
  }

  /** The error came from the group (rebalance, lost membership): kafkajs rejoins by itself. */
  isGroupError(err: unknown): boolean {
    return err !== null && typeof err === 'object' && this.groupErrors.has(err);
  }

  private async asGroupCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err !== null && typeof err === 'object') this.groupErrors.add(err);
      throw err;
    }
  }

  private mayRestartAtStartup(err: unknown): boolean {
    return !this.joined && Date.now() < this.o.startupDeadline && isCoordinatorNotReady(err);
  }

  /** Commits from inside a batch, through the batch's own payload. */
  commitInBatch(payload: EachBatchPayload): Committer {
    return async (commits) => {
      await this.asGroupCall(() => payload.commitOffsetsIfNecessary({ topics: byTopic(commits) }));
      return true;
    };
  }

  /** Commits between batches, through the consumer. */
  readonly commitBetweenBatches: Committer = async (commits) => {
    // kafkajs skips commits silently while its consumer restarts; they wait for the next drain.
    if (this.consumer === undefined || this.restarting) return false;
    try {
      await this.consumer.commitOffsets(
        commits.map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset.toString() })),
      );
      return true;
    } catch (err) {
      this.o.logger.debug(`could not commit delivered offsets: ${(err as Error).message}`);
      return false;
    }
  };

  /**
   * --once: customers wait until this member's product partitions are read to their end offsets,
   * so the customers of an initial load are first delivered with their products known.
   */
  updateProductPhase(): void {
    const { once, topics, offsets, control, logger } = this.o;
    if (!once || this.consumer === undefined || control.stopRequested) return;
    const waiting = !offsets.assignedRead(topics.products);
    if (waiting === this.customersPaused) return;
    if (waiting) this.consumer.pause([{ topic: topics.customers }]);
    else this.consumer.resume([{ topic: topics.customers }]);
    this.customersPaused = waiting;
    logger.debug(waiting ? 'reading products before customers' : 'products read: reading customers');
  }

  /** Joins the group and starts fetching; batches go to `handlers` until `leave()`. */
  async join(handlers: MembershipHandlers): Promise<void> {
    const { kafka, brokers, group, once, control, offsets, logger } = this.o;
    const c = kafka.consumer({
      groupId: group,
      sessionTimeout: this.o.sessionTimeoutMs,
      rebalanceTimeout: 60_000,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxWaitTimeInMs: once ? 500 : 2_000,
      allowAutoTopicCreation: false,
      // With --once a consumer that cannot reach Kafka ends the run (exit 75) instead of restarting
      // forever — except, for a bounded time, a first join a just-started broker is not ready for.
      retry: { retries: 5, restartOnFailure: async (err) => !once || this.mayRestartAtStartup(err) },
    });
    this.consumer = c;
    c.on(c.events.GROUP_JOIN, (event) => {
      this.joined = true;
      control.touch();
      // Offsets owed from the previous generation are not committed here any more: whoever owns
      // those partitions now reads them again, and the next drain delivers their marks first.
      handlers.joined();
      this.rebalancing = false;
      this.restarting = false;
      offsets.assign(
        Object.entries(event.payload.memberAssignment).flatMap(([topic, partitions]) =>
          partitions.map((partition) => ({ topic, partition })),
        ),
      );
      logger.debug(
        `joined group ${group}: ${offsets.assigned.map((p) => `${p.topic}[${p.partition}]`).join(' ') || 'no partitions'}`,
      );
      this.updateProductPhase();
    });
    c.on(c.events.REBALANCING, () => control.touch());
    c.on(c.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (restart) {
        this.restarting = true;
        logger.warn(`Kafka consumer restarting after: ${error.message}`);
      } else control.fail(toKafkaError(error, brokers, 'consuming'));
    });
    c.on(c.events.END_BATCH_PROCESS, (event) => {
      control.touch();
      const { topic, partition, batchSize: size, firstOffset, lastOffset } = event.payload;
      // A fetch holding only control records (transaction markers) never reaches eachBatch; owe
      // its offsets like a merged batch's, or "drain to the end" would never end.
      if (size !== 0 || control.halted || firstOffset === null) return;
      handlers.controlRecords(topic, partition, BigInt(firstOffset), BigInt(lastOffset));
    });
    try {
      await c.connect();
      await c.subscribe({ topics: this.dataTopics, fromBeginning: true });
    } catch (err) {
      throw toKafkaError(err, brokers, 'joining the consumer group');
    }
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload, handlers),
    });
  }

  private async eachBatch(payload: EachBatchPayload, handlers: MembershipHandlers): Promise<void> {
    const { control, mutex } = this.o;
    // After a stop, batches are left unread (and uncommitted) for the next run; during a
    // rebalance, for whoever owns their partition next.
    if (control.halted || control.stopRequested || this.rebalancing) return;
    control.inFlight++;
    control.touch();
    // Heartbeats keep flowing while the batch waits for a drain between batches and while a
    // slow delivery (retries, Retry-After) runs, so the group does not evict this member; a
    // rebalance seen there surfaces at the next checkpoint.
    let groupError: unknown;
    const keepalive = setInterval(() => {
      payload.heartbeat().catch((err: unknown) => {
        if (err !== null && typeof err === 'object') this.groupErrors.add(err);
        groupError ??= err;
      });
    }, this.heartbeatIntervalMs);
    const heartbeat = async () => {
      if (groupError !== undefined) throw groupError;
      await this.asGroupCall(() => payload.heartbeat());
    };
    try {
      await mutex.run(async () => {
        if (control.halted) return;
        try {
          await handlers.batch(payload, heartbeat);
        } catch (err) {
          if (this.isGroupError(err)) {
            this.rebalancing = true;
            await handlers.revoked(payload);
          }
          throw err;
        }
      });
    } catch (err) {
      // Rebalances and lost membership are kafkajs's to handle (it rejoins); what was not
      // committed is read again, and what it merged is still in the outbox.
      if (this.isGroupError(err)) throw err;
      control.fail(err);
    } finally {
      clearInterval(keepalive);
      control.inFlight--;
      control.touch();
    }
  }

  /** Stops fetching before the last drain, so no batch starts while the run winds down. */
  pauseAll(): void {
    try {
      this.consumer?.pause(this.dataTopics.map((topic) => ({ topic })));
    } catch (err) {
      this.o.logger.debug(`could not pause fetching: ${(err as Error).message}`);
    }
  }

  /** Leaves the group. */
  async leave(): Promise<void> {
    await this.consumer?.disconnect().catch(() => {});
  }

  /** The consumer is gone (left, or abandoned by a stop that timed out): no more commits or pauses. */
  forget(): void {
    this.consumer = undefined;
  }

  get active(): boolean {
    return this.consumer !== undefined;
  }
}
