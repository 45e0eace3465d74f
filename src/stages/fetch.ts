import { UsageError } from '../errors.js';
import { Checkpoints } from '../state/checkpoints.js';
import { silentLogger, type Logger } from '../log.js';
import { FETCH_SETTINGS, flagOf } from '../settings/index.js';
import { RejectFile } from '../io/reject-file.js';
import { openOutput } from './fetch/output.js';
import { incrementalCheckpointName } from './fetch/plan.js';
import { findRange, resumeOffset, type RangeRecord } from './fetch/checkpoint-records.js';
import { failureOf, Run, type FetchReject, type Plan } from './fetch/page-loop.js';
import { planIncremental } from './fetch/incremental.js';
import { planBackfill, planBackfillRange } from './fetch/backfill.js';
import type { FetchOptions, FetchSummary } from './fetch/types.js';

export type * from './fetch/types.js';

/**
 * The fetch stage: pages through one source and makes every page durable (file fsync, stdout
 * hand-off, or Kafka acknowledgement) before recording progress in the state store.
 *
 * Checkpoints (all in the `checkpoints` table, JSON values):
 * - `fetch:<source>` — the incremental high-water mark of the last *completed* run, plus the progress
 *   of an unfinished run {window, cursor after the last durable page, max source time seen}. The mark
 *   moves only when a run completes: sources do not return records in modification order and records
 *   change while paging, so only a finished window proves nothing before its max time was missed.
 *   Each run's window ends at its start time (`until`), so records changed during the run fall into
 *   the next run instead of slipping past the cursor.
 * - `fetch:<source>:backfill:<since>/<until>` — a backfill range (its windowing, done or not), and
 *   `…:<windowStart>` per window — that window's cursor and whether it is done. Backfills never touch
 *   the incremental mark.
 */

/** Decides what this invocation does: a new or resumed incremental/full run, or a backfill range. */
async function makePlan(
  options: FetchOptions,
  checkpoints: Checkpoints,
  now: Date,
  logger: Logger,
): Promise<{ plan: Plan | null; before: string | null }> {
  const source = options.connector.source;
  const mode = options.mode;
  if (mode.kind !== 'backfill') {
    const result = await planIncremental(options, checkpoints, mode.kind, now, logger);
    if (result.plan || !options.resumeOnly || mode.kind === 'full') return result;
    // `--resume` with nothing incremental to continue: an unfinished backfill, if there is exactly one.
    const open = await findRange(checkpoints, source, (r) => r.status !== 'done');
    if (open.length === 0) return result;
    if (open.length > 1) {
      const flag = (key: 'source' | 'since' | 'until') => flagOf(FETCH_SETTINGS, key);
      throw new UsageError(`${open.length} unfinished ${source} backfills; say which one to resume`, {
        hint: open
          .map(
            (r) =>
              `syncctl fetch ${flag('source')} ${source} ${flag('since')} ${r.since} ${flag('until')} ${r.until}`,
          )
          .join('  |  '),
      });
    }
    const range = open[0] as RangeRecord;
    return { plan: await planBackfill(options, checkpoints, range, false, logger), before: result.before };
  }

  return planBackfillRange(options, checkpoints, mode, now, logger);
}

/** Runs one fetch: plans it from the checkpoints, pages, writes, checkpoints, and reports. */
export async function fetch(options: FetchOptions): Promise<FetchSummary> {
  const started = Date.now();
  const logger = options.logger ?? silentLogger;
  const now = options.now?.() ?? new Date();
  const source = options.connector.source;
  const checkpoints = await Checkpoints.open(options.db);
  const { plan, before } = await makePlan(options, checkpoints, now, logger);
  const checkpointName = incrementalCheckpointName(source);
  const outputTarget = (): FetchSummary['output'] => {
    const o = options.output;
    if (o.kind === 'stdout') return { kind: 'stdout', target: 'stdout' };
    if (o.kind === 'file') return { kind: 'file', target: o.path };
    return { kind: 'kafka', target: o.topic };
  };
  const base: FetchSummary = {
    source,
    mode: options.mode.kind,
    status: 'nothing-to-resume',
    output: outputTarget(),
    resumed: false,
    window: null,
    pages: 0,
    records: 0,
    upserts: 0,
    deletes: 0,
    rejects: 0,
    rejectsFile: null,
    requests: 0,
    retries: 0,
    durationMs: 0,
    checkpoint: { name: checkpointName, before, after: before },
    backfill: null,
    error: null,
    stoppedAt: null,
  };
  if (!plan) {
    base.durationMs = Date.now() - started;
    return base;
  }

  const output = await openOutput(
    options.output,
    plan.resumed ? resumeOffset(options.output, plan.earlier) : undefined,
    logger,
  );
  // Appended on a resumed run, and fsynced before the page's checkpoint moves.
  const rejects = new RejectFile<FetchReject>(options.rejectsPath, { append: plan.resumed, durable: true });
  const run = new Run(options, output, rejects, checkpoints, logger);
  let result: Awaited<ReturnType<Plan['execute']>>;
  try {
    result = await plan.execute(run);
  } finally {
    await rejects.close().catch(() => {});
    await output.close().catch(() => {});
  }
  const stats = options.connector.stats();
  const failure = failureOf(run);
  return {
    ...base,
    mode: plan.mode,
    status: run.failure
      ? 'failed'
      : run.interrupted
        ? 'interrupted'
        : run.pageLimited
          ? 'page-limit'
          : 'completed',
    output: { kind: output.kind, target: output.target },
    resumed: plan.resumed,
    window: result.window,
    pages: run.totals.pages,
    records: run.totals.records,
    upserts: run.totals.records - run.totals.deletes,
    deletes: run.totals.deletes,
    rejects: rejects.count,
    rejectsFile: rejects.used ? rejects.path : null,
    requests: stats.requests,
    retries: stats.retries,
    durationMs: Date.now() - started,
    checkpoint: { name: checkpointName, before, after: result.after },
    backfill: result.backfill,
    error: failure?.error ?? null,
    stoppedAt: failure?.stoppedAt ?? null,
  };
}
