import { migrate, type Db } from './db.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS runs (
     id TEXT PRIMARY KEY,
     job TEXT NOT NULL,
     started_at TEXT NOT NULL,
     ended_at TEXT,
     outcome TEXT NOT NULL,
     exit_code INTEGER,
     error TEXT,
     steps TEXT NOT NULL
   )`,
];

/** What one step of a run did: its name (fetch:crm, consume), outcome, exit code and counts. */
export interface RunStep {
  name: string;
  outcome: 'ok' | 'partial' | 'failed' | 'skipped';
  exitCode: number;
  durationMs: number;
  counts: Record<string, number>;
  error: string | null;
}

/**
 * A killed run leaves its row `running` (nobody was left to finish it); the next run of the job,
 * once it holds the job's lock, marks it `killed`.
 */
export type RunOutcome = 'running' | 'ok' | 'partial' | 'failed' | 'killed';

export interface RunRecord {
  id: string;
  job: string;
  startedAt: string;
  endedAt: string | null;
  outcome: RunOutcome;
  exitCode: number | null;
  error: string | null;
  steps: RunStep[];
}

interface RunRow {
  id: string;
  job: string;
  started_at: string;
  ended_at: string | null;
  outcome: string;
  exit_code: number | string | null;
  error: string | null;
  steps: string;
}

/** The history of `syncctl run`: one row per run, written at its start and again at its end. */
export class Runs {
  private constructor(private readonly db: Db) {}

  static async open(db: Db): Promise<Runs> {
    await migrate(db, SCHEMA);
    return new Runs(db);
  }

  async start(id: string, job: string, startedAt = new Date()): Promise<void> {
    await this.db.run(
      `INSERT INTO runs (id, job, started_at, outcome, steps) VALUES (?, ?, ?, 'running', '[]')`,
      [id, job, startedAt.toISOString()],
    );
  }

  async finish(
    id: string,
    result: {
      outcome: Exclude<RunOutcome, 'running'>;
      exitCode: number;
      error: string | null;
      steps: RunStep[];
    },
    endedAt = new Date(),
  ): Promise<void> {
    await this.db.run(
      'UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, error = ?, steps = ? WHERE id = ?',
      [
        endedAt.toISOString(),
        result.outcome,
        result.exitCode,
        result.error,
        JSON.stringify(result.steps),
        id,
      ],
    );
  }

  /**
   * Marks the job's `running` rows other than `current` as killed. Only for a caller holding the
   * job's lock: no other run of the job can be alive then, so those rows belong to dead processes.
   */
  async markKilled(job: string, current: string, reason: string): Promise<RunRecord[]> {
    const rows = (await this.recent(1_000, job)).filter((r) => r.outcome === 'running' && r.id !== current);
    for (const r of rows) {
      await this.db.run(
        `UPDATE runs SET outcome = 'killed', error = ? WHERE id = ? AND outcome = 'running'`,
        [reason, r.id],
      );
    }
    return rows;
  }

  /** When a run of the job last finished, with or without rejects (exit 0 or 3). */
  async lastSuccess(job: string): Promise<Date | null> {
    const rows = await this.db.query<{ ended_at: string }>(
      `SELECT ended_at FROM runs WHERE job = ? AND outcome IN ('ok', 'partial') ORDER BY ended_at DESC LIMIT 1`,
      [job],
    );
    return rows[0] ? new Date(rows[0].ended_at) : null;
  }

  /** The latest runs first; of one job if given. */
  async recent(limit: number, job?: string): Promise<RunRecord[]> {
    const rows = await this.db.query<RunRow & Record<string, unknown>>(
      job === undefined
        ? 'SELECT * FROM runs ORDER BY started_at DESC, id LIMIT ?'
        : 'SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC, id LIMIT ?',
      job === undefined ? [limit] : [job, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      job: r.job,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      outcome: r.outcome as RunOutcome,
      exitCode: r.exit_code === null ? null : Number(r.exit_code),
      error: r.error,
      steps: JSON.parse(r.steps) as RunStep[],
    }));
  }
}
