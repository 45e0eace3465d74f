/**
 * `syncctl status`: one read-only look at the sync — Kafka end offsets and the group's lag, the
 * dead-letter depth, source checkpoints, the last runs and the lock holders. It reads the group's
 * committed offsets through the admin API and never joins the group.
 */
import type { Kafka } from 'kafkajs';
import { toKafkaError, withAdmin } from '../connectors/kafka.js';
import { toSyncError, type SyncError } from '../errors.js';
import { Checkpoints } from '../state/checkpoints.js';
import { openDb } from '../state/db.js';
import { listLocks, type LockHolder } from '../state/locks.js';
import { Runs, type RunRecord } from '../state/runs.js';
import { describeTopics } from './topics.js';

export interface StatusOptions {
  kafka: Kafka;
  brokers: string[];
  statePath: string;
  group: string;
  topics: { customers: string; products: string; deadLetter: string };
  /** How many of the latest runs to show. */
  runs: number;
}

export interface PartitionStatus {
  topic: string;
  partition: number;
  low: number;
  high: number;
  /** The group's next offset; null when it has committed none on this partition. */
  committed: number | null;
  /** Messages the group has not consumed yet (null for the dead-letter topic, which it does not read). */
  lag: number | null;
}

export interface CheckpointStatus {
  name: string;
  updatedAt: string;
  value: unknown;
}

export interface StatusReport {
  state: {
    location: string;
    checkpoints: CheckpointStatus[];
    runs: RunRecord[];
    locks: LockHolder[];
  };
  kafka: {
    group: string;
    partitions: PartitionStatus[];
    lag: number;
    deadLetterDepth: number;
    /** Topics that do not exist (yet). */
    missing: string[];
  } | null;
  /** Why the Kafka part is missing. */
  kafkaError: SyncError | null;
}

async function stateStatus(options: StatusOptions): Promise<StatusReport['state']> {
  const db = await openDb(options.statePath);
  try {
    const checkpoints = await (await Checkpoints.open(db)).list('fetch:');
    const runs = await (await Runs.open(db)).recent(options.runs);
    const locks = await listLocks(db);
    return { location: db.location, checkpoints, runs, locks };
  } finally {
    await db.close();
  }
}

async function kafkaStatus(options: StatusOptions): Promise<NonNullable<StatusReport['kafka']>> {
  const { customers, products, deadLetter } = options.topics;
  const described = await describeTopics({
    kafka: options.kafka,
    brokers: options.brokers,
    topics: [customers, products, deadLetter],
  });
  const data = described.filter((t) => t.name !== deadLetter).map((t) => t.name);
  const committed = new Map<string, number>();
  if (data.length > 0) {
    await withAdmin(options.kafka, options.brokers, async (admin) => {
      try {
        const offsets = await admin.fetchOffsets({ groupId: options.group, topics: data });
        for (const t of offsets) {
          for (const p of t.partitions) {
            // -1: nothing committed on that partition.
            if (Number(p.offset) >= 0) committed.set(`${t.topic}/${p.partition}`, Number(p.offset));
          }
        }
      } catch (err) {
        throw toKafkaError(err, options.brokers, `reading the offsets of group ${options.group}`);
      }
    });
  }
  const partitions: PartitionStatus[] = [];
  for (const topic of described) {
    for (const p of topic.partitions) {
      const next = committed.get(`${topic.name}/${p.partition}`) ?? null;
      const isDlq = topic.name === deadLetter;
      partitions.push({
        topic: topic.name,
        partition: p.partition,
        low: p.low,
        high: p.high,
        committed: isDlq ? null : next,
        // With nothing committed the group starts at the beginning: everything retained is lag.
        lag: isDlq ? null : p.high - Math.max(next ?? p.low, p.low),
      });
    }
  }
  return {
    group: options.group,
    partitions,
    lag: partitions.reduce((sum, p) => sum + (p.lag ?? 0), 0),
    deadLetterDepth: described.find((t) => t.name === deadLetter)?.messages ?? 0,
    missing: [customers, products, deadLetter].filter((t) => !described.some((d) => d.name === t)),
  };
}

/**
 * The state store part must open (it is the point of the command); Kafka may be down, in which case
 * the report says why and the caller decides the exit code.
 */
export async function status(options: StatusOptions): Promise<StatusReport> {
  const state = await stateStatus(options);
  try {
    return { state, kafka: await kafkaStatus(options), kafkaError: null };
  } catch (err) {
    return { state, kafka: null, kafkaError: toSyncError(err) };
  }
}
