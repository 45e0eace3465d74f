import type { EachBatchPayload } from 'kafkajs';
import { SyncError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MergeStore } from '../../state/merge-store.js';
import type { Drainer } from './drain.js';
import type { EndOffsets } from './end-offsets.js';
import type { Committer, GroupMembership } from './membership.js';
import type { Mutex } from './mutex.js';
import type { DueLimits, PendingDeliveries } from './pending.js';
import { sleep, type RunControl } from './run-control.js';
import type { ConsumeCounters } from './types.js';

export interface DeliveryOptions {
  store: MergeStore;
  drainer: Drainer;
  pending: PendingDeliveries;
  offsets: EndOffsets;
  control: RunControl;
  membership: GroupMembership;
  mutex: Mutex;
  counters: ConsumeCounters;
  once: boolean;
  limits: DueLimits;
  logger: Logger;
}

/** Errors from the transient side (Analytics or Kafka unavailable) that a later attempt may get past. */
export function isTransient(err: unknown): boolean {
  return err instanceof SyncError && err.retryable;
}

const noHeartbeat = async () => {};

/**
 * The delivery scheduler: decides when the outbox is drained — enough marks, the oldest undelivered
 * merge old enough, this member's partitions read to the --once end offsets, a stop, a rebalance
 * taking partitions away — and commits the offsets a drain covered. A batch's offset is committed
 * only by a drain that delivered or dead-lettered every mark in the outbox when it started.
 */
export class DeliveryScheduler {
  /** A drain between batches is queued or running. */
  private drainingValue = false;

  constructor(private readonly o: DeliveryOptions) {}

  get draining(): boolean {
    return this.drainingValue;
  }

  /** Whether the outbox should be drained now. */
  due(): boolean {
    const { pending, control, once, offsets } = this.o;
    return (
      pending.due(this.o.limits) ||
      (!pending.idle && (control.stopRequested || (once && offsets.assignedRead())))
    );
  }

  /** A Kafka batch up to `next` (exclusive) is merged and set `marks` dirty marks. */
  noteMerged(topic: string, partition: number, next: bigint, marks: number): void {
    this.o.pending.merged(topic, partition, this.o.offsets.merged(topic, partition, next), marks);
  }

  /**
   * Drains until `gen` is delivered. Without --once a transient Analytics or Kafka failure is waited
   * out (with heartbeats, so the group keeps the partition); with --once it ends the run (exit 75).
   */
  private async drainWithRetry(gen: number | null, heartbeat: () => Promise<void>, retry: boolean) {
    const { drainer, control, once, logger } = this.o;
    for (let attempt = 1; ; attempt++) {
      try {
        await drainer.drain({ gen, heartbeat, cancelled: () => control.forced });
        return;
      } catch (err) {
        if (!retry || once || !isTransient(err) || control.stopRequested) throw err;
        const delay = Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5)) * (0.8 + Math.random() * 0.4);
        logger.warn(`${(err as Error).message}; retrying delivery in ${(delay / 1000).toFixed(1)} s`);
        const until = Date.now() + delay;
        while (Date.now() < until && !control.stopRequested) {
          await sleep(Math.min(1_000, until - Date.now()));
          await heartbeat();
        }
        if (control.stopRequested) throw err;
      }
    }
  }

  /**
   * Delivers every mark in the outbox (anyone's, up to the newest generation: a batch read again
   * after a rebalance marks nothing, yet the marks of its first reading must be delivered before
   * its offset moves), then commits what this instance owes.
   */
  async drainAndCommit(heartbeat: () => Promise<void>, commit: Committer, retry: boolean): Promise<void> {
    const { pending, store, control, counters, offsets, once } = this.o;
    if (pending.idle) return;
    const owed = pending.snapshot();
    await this.drainWithRetry(await store.maxGen(), heartbeat, retry);
    pending.drained();
    if (control.halted || owed.epoch !== pending.epoch || owed.commits.length === 0) return;
    if (!(await commit(owed.commits))) return;
    pending.committed(owed);
    counters.commits++;
    offsets.committedHere(owed.commits);
    if (once && offsets.isDone()) control.requestStop('end-offsets');
  }

  /** After a merged batch: the drain, when one is due, inside the batch (its heartbeats and commits). */
  async afterBatch(payload: EachBatchPayload, heartbeat: () => Promise<void>): Promise<void> {
    if (this.due()) await this.drainAndCommit(heartbeat, this.o.membership.commitInBatch(payload), true);
  }

  /**
   * A rebalance is taking partitions away (kafkajs has no revocation hook; a heartbeat in a batch
   * is where it shows): deliver and commit what is owed while the group still accepts this
   * generation's commits, so the next owner does not read it again. One attempt, no retries:
   * what fails stays in the outbox and uncommitted.
   */
  async handOver(payload: EachBatchPayload): Promise<void> {
    const { pending, control, membership, logger } = this.o;
    if (pending.idle || control.halted) return;
    logger.debug('the group is rebalancing: delivering and committing what was read before rejoining');
    try {
      await this.drainAndCommit(noHeartbeat, membership.commitInBatch(payload), false);
    } catch (err) {
      logger.debug(`could not deliver and commit before the rebalance: ${(err as Error).message}`);
    }
  }

  /** Offsets of a fetch that held only control records are owed like a merged batch's. */
  controlRecords(topic: string, partition: number, first: bigint, last: bigint): void {
    const { mutex, control, offsets, membership, logger } = this.o;
    void mutex
      .run(async () => {
        if (control.stopRequested || control.halted) return;
        const known = offsets.known(topic, partition);
        if (known !== undefined && first > known) return;
        this.noteMerged(topic, partition, last + 1n, 0);
        if (this.due()) await this.drainAndCommit(noHeartbeat, membership.commitBetweenBatches, false);
        membership.updateProductPhase();
      })
      .catch((err: unknown) =>
        logger.debug(`could not commit past control records: ${(err as Error).message}`),
      );
  }

  /** Between batches (none in flight): the timed drain, when one is due. */
  private drainIdle(what: () => Promise<void>): void {
    const { mutex, control, membership, once, logger } = this.o;
    if (control.stopRequested || control.inFlight > 0 || this.drainingValue) return;
    this.drainingValue = true;
    void mutex
      .run(async () => {
        if (control.stopRequested || control.inFlight > 0 || control.halted || membership.rebalancing) return;
        await what();
      })
      .catch((err: unknown) => {
        if (!once && isTransient(err) && !control.stopRequested)
          logger.warn(`${(err as Error).message}; will retry`);
        else control.fail(err);
      })
      .finally(() => {
        this.drainingValue = false;
        control.touch();
      });
  }

  /** Timer: the deferred drain between batches, once due. */
  tick(): void {
    if (this.due())
      this.drainIdle(() => this.drainAndCommit(noHeartbeat, this.o.membership.commitBetweenBatches, true));
  }

  /**
   * Timer: pick up outbox rows nobody is delivering (an instance died, or a rebalance cut a drain
   * short) while this instance has nothing of its own waiting: one delivery round at a time so
   * batches are not held up.
   */
  pickUpOrphans(): void {
    const { pending, store, drainer } = this.o;
    if (!pending.idle) return;
    this.drainIdle(async () => {
      if (!pending.idle) return;
      const claims = await store.pendingTotal();
      if (claims > 0) await drainer.drain({ gen: null, heartbeat: noHeartbeat, maxRounds: 1 });
    });
  }

  /** A stop: deliver what was merged and commit it (a batch in flight does so itself). */
  async finish(): Promise<void> {
    await this.o.mutex
      .run(() => this.drainAndCommit(noHeartbeat, this.o.membership.commitBetweenBatches, false))
      .catch((err: unknown) => this.o.control.fail(err));
  }

  /**
   * --once, after leaving the group: marks from drains cut short (rebalance, killed instances) are
   * delivered before the run reports success.
   */
  async leftovers(): Promise<void> {
    const { mutex, store, drainer, control } = this.o;
    await mutex.run(async () => {
      const horizon = await store.maxGen();
      await drainer.drain({ gen: horizon, heartbeat: noHeartbeat, cancelled: () => control.forced });
    });
  }
}
