import { StateError } from '../errors.js';
import { migrate, type Db } from './db.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS replay_dlq_progress (
     dlq_topic TEXT NOT NULL,
     dlq_partition INTEGER NOT NULL,
     dlq_offset TEXT NOT NULL,
     outcome TEXT NOT NULL,
     replayed_at TEXT NOT NULL,
     PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
   )`,
];

/** What became of a replayed dead letter. */
export type ReplayOutcome = 'republished' | 'remarked' | 'failed-again';

export interface ReplayMark {
  partition: number;
  offset: string;
  outcome: ReplayOutcome;
}

/**
 * Which dead letters were replayed, per dead-letter partition and offset, so running the same
 * replay again replays nothing twice. A mark is written after its effect is durable (republished
 * and acknowledged, or re-marked in the state store): a crash in between replays that letter again,
 * which the consume stage's idempotent merge and delivery ledger absorb.
 */
export class ReplayProgress {
  private constructor(private readonly db: Db) {}

  static async open(db: Db): Promise<ReplayProgress> {
    try {
      await migrate(db, SCHEMA);
    } catch (err) {
      throw new StateError(
        `cannot create the replay progress table in ${db.location}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return new ReplayProgress(db);
  }

  /** Every replayed letter of a dead-letter topic, keyed "partition:offset". */
  async done(topic: string): Promise<Map<string, ReplayOutcome>> {
    const rows = await this.db.query<{ dlq_partition: number | string; dlq_offset: string; outcome: string }>(
      'SELECT dlq_partition, dlq_offset, outcome FROM replay_dlq_progress WHERE dlq_topic = ?',
      [topic],
    );
    return new Map(
      rows.map((r) => [`${Number(r.dlq_partition)}:${r.dlq_offset}`, r.outcome as ReplayOutcome]),
    );
  }

  async mark(topic: string, marks: ReplayMark[]): Promise<void> {
    if (marks.length === 0) return;
    const now = new Date().toISOString();
    await this.db.transaction(async (tx) => {
      for (let i = 0; i < marks.length; i += 200) {
        const part = marks.slice(i, i + 200);
        await tx.run(
          `INSERT INTO replay_dlq_progress (dlq_topic, dlq_partition, dlq_offset, outcome, replayed_at)
           VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
           ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE SET outcome = excluded.outcome,
             replayed_at = excluded.replayed_at`,
          part.flatMap((m) => [topic, m.partition, m.offset, m.outcome, now]),
        );
      }
    });
  }
}
