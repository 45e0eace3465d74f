import type { Admin } from 'kafkajs';

/** "topic:partition" */
export type PartitionId = string;

export function partitionId(topic: string, partition: number): PartitionId {
  return `${topic}:${partition}`;
}

export interface PartitionEnds {
  low: bigint;
  high: bigint;
}

/** Log start and end offsets of every partition of the topics, now. */
export async function fetchEnds(admin: Admin, topics: string[]): Promise<Map<PartitionId, PartitionEnds>> {
  const out = new Map<PartitionId, PartitionEnds>();
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      out.set(partitionId(topic, p.partition), { low: BigInt(p.low), high: BigInt(p.high) });
    }
  }
  return out;
}

/** The group's committed positions (the next offset to read); partitions never committed are absent. */
export async function fetchCommitted(
  admin: Admin,
  group: string,
  topics: string[],
): Promise<Map<PartitionId, bigint>> {
  const out = new Map<PartitionId, bigint>();
  const result = await admin.fetchOffsets({ groupId: group, topics });
  for (const { topic, partitions } of result) {
    for (const p of partitions) {
      const offset = BigInt(p.offset);
      if (offset >= 0n) out.set(partitionId(topic, p.partition), offset);
    }
  }
  return out;
}

/** Where reading would resume: the committed position, or the log start when never committed. */
export function positionOf(ends: PartitionEnds, committed: bigint | undefined): bigint {
  if (committed === undefined || committed < ends.low) return ends.low;
  return committed;
}

export interface LagReport {
  total: number;
  partitions: Record<PartitionId, number>;
}

export function lagOf(ends: Map<PartitionId, PartitionEnds>, committed: Map<PartitionId, bigint>): LagReport {
  const partitions: Record<PartitionId, number> = {};
  let total = 0;
  for (const [id, e] of ends) {
    const lag = e.high - positionOf(e, committed.get(id));
    const n = lag > 0n ? Number(lag) : 0;
    partitions[id] = n;
    total += n;
  }
  return { total, partitions };
}
