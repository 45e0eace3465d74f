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
import type { RangeRecord, WindowRecord } from './fetch/checkpoint-records.js';
import { describeWindowSpec, splitWindows } from './fetch/plan.js';
import { countDeadLetters, type ErrorClassCount } from './replay-dlq/list.js';
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

/** One `fetch --since/--until` range and how far its windows got. */
export interface BackfillStatus {
  source: string;
  since: string;
  until: string;
  window: string;
  status: 'running' | 'done';
  windows: number;
  done: number;
  /** Windows with durable progress that did not finish (an interrupted or running fetch). */
  inProgress: number;
  remaining: number;
  /** Records fetched so far, over all windows. */
  records: number;
  startedAt: string;
  completedAt: string | null;
  checkpoint: string;
}

export interface StatusReport {
  state: {
    location: string;
    /** Source checkpoints; backfill ranges and their windows are summed up in `backfills` instead. */
    checkpoints: CheckpointStatus[];
    backfills: BackfillStatus[];
    runs: RunRecord[];
    locks: LockHolder[];
  };
  kafka: {
    group: string;
    partitions: PartitionStatus[];
    lag: number;
    deadLetterDepth: number;
    /** The dead letters by error class and code, most frequent first. */
    deadLetters: ErrorClassCount[];
    /** Topics that do not exist (yet). */
    missing: string[];
  } | null;
  /** Why the Kafka part is missing. */
  kafkaError: SyncError | null;
}

const BACKFILL = /^fetch:([^:]+):backfill:/;

/** Sums the `fetch:<source>:backfill:*` checkpoints up per range: thousands of windows fit one row. */
export function backfillStatus(checkpoints: CheckpointStatus[]): BackfillStatus[] {
  const ranges = checkpoints.filter((c) => (c.value as RangeRecord).kind === 'range');
  return ranges.map((c) => {
    const range = c.value as RangeRecord;
    let done = 0;
    let inProgress = 0;
    let records = 0;
    for (const w of checkpoints) {
      const value = w.value as WindowRecord;
      if (value.kind !== 'window' || !w.name.startsWith(`${c.name}:`)) continue;
      records += value.records;
      if (value.status === 'done') done++;
      else inProgress++;
    }
    const windows = splitWindows(range.since, range.until, range.window).length;
    return {
      source: BACKFILL.exec(c.name)?.[1] ?? '',
      since: range.since,
      until: range.until,
      window: describeWindowSpec(range.window),
      status: range.status,
      windows,
      done,
      inProgress,
      remaining: Math.max(0, windows - done - inProgress),
      records,
      startedAt: range.startedAt,
      completedAt: range.completedAt,
      checkpoint: c.name,
    };
  });
}

async function stateStatus(options: StatusOptions): Promise<StatusReport['state']> {
  const db = await openDb(options.statePath);
  try {
    const all = await (await Checkpoints.open(db)).list('fetch:');
    const checkpoints = all.filter((c) => !BACKFILL.test(c.name));
    const backfills = backfillStatus(all.filter((c) => BACKFILL.test(c.name)));
    let locks = await listLocks(db);
    let runs = await (await Runs.open(db)).recent(options.runs);
    // A run holds run:<job> from before its row is written until after it is finished: a running
    // row without that lock is a dead process. Shown as killed here; the next run writes it so.
    // The locks are read again, after the runs, so a run that started in between is not taken for dead.
    if (runs.some((r) => r.outcome === 'running')) {
      locks = await listLocks(db);
      const held = new Set(locks.map((l) => l.name));
      runs = runs.map((r) =>
        r.outcome === 'running' && !held.has(`run:${r.job}`)
          ? { ...r, outcome: 'killed', error: r.error ?? 'killed: its lock is gone, the run never finished' }
          : r,
      );
    }
    return { location: db.location, checkpoints, backfills, runs, locks };
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
  const deadLetterDepth = described.find((t) => t.name === deadLetter)?.messages ?? 0;
  // Reading the letters' headers takes a private, throw-away group — never the consumer group.
  const deadLetters =
    deadLetterDepth > 0
      ? (await countDeadLetters({ kafka: options.kafka, brokers: options.brokers, topic: deadLetter }))
          .byErrorClass
      : [];
  return {
    group: options.group,
    partitions,
    lag: partitions.reduce((sum, p) => sum + (p.lag ?? 0), 0),
    deadLetterDepth,
    deadLetters,
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
