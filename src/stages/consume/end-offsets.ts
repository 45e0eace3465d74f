import type { Admin } from 'kafkajs';
import { InterruptedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DeliveryScheduler } from './delivery.js';
import type { GroupMembership } from './membership.js';
import {
  fetchCommitted,
  fetchEnds,
  partitionId,
  positionOf,
  type PartitionEnds,
  type PartitionId,
} from './offsets.js';
import type { OwedCommit } from './pending.js';
import type { RunControl } from './run-control.js';

export interface AssignedPartition {
  topic: string;
  partition: number;
}

/**
 * Where every data partition stands for this instance: what it merged, what it committed, what the
 * group committed, and — with --once — the end offsets seen at start that the run reads to. A
 * partition is done once the group's position (this instance's or another's commit) reaches its
 * target; without --once there are no targets and nothing is ever done.
 */
export class EndOffsets {
  /** What this instance committed, per partition. */
  private readonly positions = new Map<PartitionId, bigint>();
  /** How far this instance merged each partition (the next offset), committed or not. */
  private readonly reached = new Map<PartitionId, bigint>();
  /** This instance's partitions since the last rebalance. */
  private assignedValue: AssignedPartition[] = [];

  constructor(
    private readonly targets: Map<PartitionId, PartitionEnds> = new Map(),
    private committed: Map<PartitionId, bigint> = new Map(),
  ) {}

  /** With --once: the end offsets and the group's committed offsets now. */
  static async open(admin: Admin, group: string, topics: string[], once: boolean): Promise<EndOffsets> {
    if (!once) return new EndOffsets();
    return new EndOffsets(await fetchEnds(admin, topics), await fetchCommitted(admin, group, topics));
  }

  get assigned(): readonly AssignedPartition[] {
    return this.assignedValue;
  }

  assign(partitions: AssignedPartition[]): void {
    this.assignedValue = partitions;
  }

  /** Every target reached by the group. */
  isDone(): boolean {
    for (const [id, ends] of this.targets) {
      if (ends.high <= ends.low) continue;
      const mine = this.positions.get(id) ?? -1n;
      const theirs = positionOf(ends, this.committed.get(id));
      if ((mine > theirs ? mine : theirs) < ends.high) return false;
    }
    return true;
  }

  /** With --once: messages up to the end offsets seen at start that nobody has read yet; else null. */
  left(): number | null {
    if (this.targets.size === 0) return null;
    let total = 0n;
    for (const [id, ends] of this.targets) {
      let at = positionOf(ends, this.committed.get(id));
      for (const p of [this.reached.get(id), this.positions.get(id)]) if (p !== undefined && p > at) at = p;
      if (ends.high > at) total += ends.high - at;
    }
    return Number(total);
  }

  /** Merged here, or committed by anyone, up to the end offset seen at start. */
  readToTarget(id: PartitionId): boolean {
    const ends = this.targets.get(id);
    if (ends === undefined || ends.high <= ends.low) return true;
    const candidates = [
      this.reached.get(id),
      this.positions.get(id),
      positionOf(ends, this.committed.get(id)),
    ];
    return candidates.some((p) => p !== undefined && p >= ends.high);
  }

  /** This instance's partitions (of one topic, or all) are read to their targets. */
  assignedRead(topic?: string): boolean {
    return this.assignedValue
      .filter((p) => topic === undefined || p.topic === topic)
      .every((p) => this.readToTarget(partitionId(p.topic, p.partition)));
  }

  /**
   * Notes a merged batch (`next` = its last offset + 1). Returns the offset owed for it, or null
   * when this instance committed past it already (read again after a rebalance: nothing is owed).
   */
  merged(topic: string, partition: number, next: bigint): bigint | null {
    const id = partitionId(topic, partition);
    if (next > (this.reached.get(id) ?? -1n)) this.reached.set(id, next);
    const mine = this.positions.get(id);
    return mine !== undefined && next <= mine ? null : next;
  }

  /** How far this partition is known to be read (merged, committed here, or by the group). */
  known(topic: string, partition: number): bigint | undefined {
    const id = partitionId(topic, partition);
    return this.reached.get(id) ?? this.positions.get(id) ?? this.committed.get(id);
  }

  /** This instance committed these offsets. */
  committedHere(commits: OwedCommit[]): void {
    for (const c of commits) this.positions.set(partitionId(c.topic, c.partition), c.offset);
  }

  /** The group's committed offsets read again; true when any moved (another instance progressed). */
  refresh(fresh: Map<PartitionId, bigint>): boolean {
    let moved = false;
    for (const [id, offset] of fresh) if (this.committed.get(id) !== offset) moved = true;
    this.committed = fresh;
    return moved;
  }
}

export interface ProgressWatchOptions {
  admin: Admin;
  group: string;
  topics: string[];
  control: RunControl;
  membership: Pick<GroupMembership, 'joined' | 'updateProductPhase'>;
  delivery: Pick<DeliveryScheduler, 'draining'>;
  /** --idle-timeout. */
  idleTimeoutMs: number;
  /** Deferred delivery: another instance commits only when its drain is due, so it may look idle this much longer. */
  maxDeliveryDelayMs: number;
  /** A member that died may hold partitions this long before the group moves on. */
  sessionTimeoutMs: number;
  logger: Logger;
}

/** kafkajs's rebalance timeout (membership.ts): the longest a rejoin may legitimately take. */
const REBALANCE_GRACE_MS = 60_000;

/**
 * --once, every second: reads the group's commits (another instance's progress counts), stops the
 * run once every end offset is reached, and fails it (exit 75) when neither this instance nor the
 * group moved for the idle timeout. A run that shows no progress for far longer — not joined, a
 * batch or a drain that never returns, the group's offsets unreadable after a broker restart —
 * fails too, so `--once` never hangs. Returns the timer to clear.
 */
export function watchGroupProgress(offsets: EndOffsets, o: ProgressWatchOptions): NodeJS.Timeout {
  const { control, membership } = o;
  const idleMs = o.idleTimeoutMs + o.maxDeliveryDelayMs;
  const stalledMs = idleMs + o.sessionTimeoutMs + REBALANCE_GRACE_MS;
  const giveUp = (why: string) =>
    control.giveUp(
      new InterruptedError(
        `no progress for ${Math.round((Date.now() - control.lastActivity) / 1000)} s ${why}; rerun to continue`,
      ),
      'idle-timeout',
    );
  return setInterval(() => {
    if (control.stopRequested) return;
    if (Date.now() - control.lastActivity > stalledMs) {
      giveUp('(the consumer stalled: not joined, or work that never returned)');
      return;
    }
    void fetchCommitted(o.admin, o.group, o.topics)
      .then((fresh) => {
        if (control.stopRequested) return;
        if (offsets.refresh(fresh)) control.touch();
        // Product partitions another instance finished before this one got them.
        membership.updateProductPhase();
        if (offsets.isDone()) control.requestStop('end-offsets');
        else if (
          membership.joined &&
          control.inFlight === 0 &&
          !o.delivery.draining &&
          Date.now() - control.lastActivity > idleMs
        ) {
          giveUp(
            'before reaching the end offsets seen at start (partitions held by an unresponsive instance, or a rebalance that does not finish)',
          );
        }
      })
      .catch((err: unknown) => o.logger.debug(`could not read committed offsets: ${(err as Error).message}`));
  }, 1_000);
}
