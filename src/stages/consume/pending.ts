import { partitionId, type PartitionId } from './offsets.js';

/** A commit owed to one partition: the next offset to read once everything before it is delivered. */
export interface OwedCommit {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface DueLimits {
  /** Deliver once this many dirty marks were set since the last delivery round. */
  backlog: number;
  /** Deliver once the oldest merge not yet delivered is this old (0: after every batch). */
  maxDelayMs: number;
}

/**
 * Deferred delivery: what this instance merged since its last drain of the outbox. Merges and dirty
 * marks are durable already; the offsets behind them are owed and committed only by the drain that
 * delivers (or dead-letters) every mark existing when it started — so an offset still moves only
 * after every record before it was delivered.
 *
 * A rebalance (`newEpoch`) forgets the owed offsets without committing them: whoever owns those
 * partitions next reads them again (merging again changes nothing), and their marks stay in the
 * outbox for the next drain. The marks count and the age of the oldest merge survive it, so that
 * drain still comes on time.
 */
export class PendingDeliveries {
  private owed = new Map<PartitionId, OwedCommit>();
  private marks = 0;
  private oldestMs: number | null = null;
  private epochValue = 0;

  get epoch(): number {
    return this.epochValue;
  }

  /** Nothing merged since the last drain. */
  get idle(): boolean {
    return this.owed.size === 0 && this.oldestMs === null;
  }

  /**
   * Records a merged (and, where invalid, dead-lettered) Kafka batch: `next` = its last offset + 1,
   * or null when no commit is owed for it (already committed).
   */
  merged(topic: string, partition: number, next: bigint | null, marks: number, now = Date.now()): void {
    if (next !== null) {
      const id = partitionId(topic, partition);
      const current = this.owed.get(id);
      // A partition read again never lowers what is owed.
      if (current === undefined || next > current.offset)
        this.owed.set(id, { topic, partition, offset: next });
    }
    this.marks += marks;
    if (next !== null || marks > 0) this.oldestMs ??= now;
  }

  /** Whether the outbox should be drained now. */
  due(limits: DueLimits, now = Date.now()): boolean {
    if (this.idle) return false;
    if (this.marks >= limits.backlog) return true;
    return now - (this.oldestMs as number) >= limits.maxDelayMs;
  }

  /** Offsets owed now, with the epoch they belong to (taken before a drain). */
  snapshot(): { epoch: number; commits: OwedCommit[] } {
    return { epoch: this.epochValue, commits: [...this.owed.values()] };
  }

  /** A drain finished: the marks it covered are delivered; the timer starts again with the next merge. */
  drained(): void {
    this.marks = 0;
    this.oldestMs = null;
  }

  /** The snapshot's offsets are committed: forget them (unless a rebalance already did). */
  committed(snapshot: { epoch: number; commits: OwedCommit[] }): void {
    if (snapshot.epoch !== this.epochValue) return;
    for (const c of snapshot.commits) {
      const id = partitionId(c.topic, c.partition);
      if (this.owed.get(id)?.offset === c.offset) this.owed.delete(id);
    }
  }

  /** A new group generation: owed offsets are not ours to commit any more. */
  newEpoch(): void {
    this.epochValue++;
    this.owed.clear();
  }
}
