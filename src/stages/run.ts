/**
 * `syncctl run`: the nightly job in one call — fetch each source into Kafka, then `consume --once`,
 * then (when asked) `export-csv --upload` — under the lock `run:<job>`, recorded in the run history. Each step is the stage itself, opened by
 * wiring.ts and holding the same lock it takes when run alone.
 */
import { analyticsConfigFromSettings } from '../connectors/analytics-sink.js';
import type { KafkaOptions } from '../connectors/kafka.js';
import { ExitCode, toSyncError, type SyncError } from '../errors.js';
import type { Source } from '../records/envelope.js';
import { CONSUME_SETTINGS, EXPORT_CSV_SETTINGS, resolveSettings } from '../settings/index.js';
import { openDb, type Db } from '../state/db.js';
import { acquireLock, withLock } from '../state/locks.js';
import { Runs, type RunOutcome, type RunStep } from '../state/runs.js';
import { consume, type ConsumeSummary } from './consume.js';
import { exportCsv, type ExportCsvSummary, type ExportEntity } from './export-csv.js';
import { fetch, type FetchMode, type FetchSummary } from './fetch.js';
import { openConsume, openFetch, type SettingsInput } from './wiring.js';

export const RUN_STEPS = ['fetch', 'consume', 'export'] as const;
export type RunStepKind = (typeof RUN_STEPS)[number];
export const RUN_SOURCES: readonly Source[] = ['crm', 'inventory'];

export interface RunOptions extends SettingsInput {
  job: string;
  runId: string;
  steps: readonly RunStepKind[];
  kafka: KafkaOptions;
  /** Incremental, or a backfill range applied to both sources. */
  fetchMode: FetchMode;
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as each step ends, so a caller can show progress. */
  onStep?: (step: RunStepResult) => void;
  /** The running step's counts so far (its stage's own progress report), for a terminal's progress line. */
  onProgress?: (step: string, counts: Record<string, number>) => void;
}

export interface RunStepResult extends Omit<RunStep, 'error'> {
  source: Source | null;
  error: SyncError | null;
  /** The stage's own summary (null when the step was skipped). */
  summary: FetchSummary | ConsumeSummary | ExportCsvSummary | null;
}

export interface RunSummary {
  runId: string;
  job: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: Exclude<RunOutcome, 'running'>;
  exitCode: ExitCode;
  steps: RunStepResult[];
  /** The first failing step's error. */
  error: SyncError | null;
  /** When a run of this job last finished (exit 0 or 3), this one included. */
  lastSuccessAt: string | null;
}

function fetchCounts(s: FetchSummary): Record<string, number> {
  const published = s.output.kind === 'kafka' ? s.records : 0;
  return { fetched: s.records, published, rejected: s.rejects, retries: s.retries, pages: s.pages };
}

function consumeCounts(s: ConsumeSummary): Record<string, number> {
  return {
    consumed: s.consumed,
    delivered: s.delivered,
    deadLettered: s.deadLettered,
    skippedDuplicate: s.skippedDuplicate,
    retries: s.retries,
    ...(s.lagLeft ? { lagLeft: s.lagLeft.total } : {}),
  };
}

function exportCounts(s: ExportCsvSummary): Record<string, number> {
  return {
    exported: s.rows,
    uploaded: s.upload?.rows ?? 0,
    bytes: s.bytes,
    retries: s.upload?.retries ?? 0,
  };
}

function stepOf(
  name: string,
  source: Source | null,
  started: number,
  summary: FetchSummary | ConsumeSummary | ExportCsvSummary,
  counts: Record<string, number>,
  flagged: number,
): RunStepResult {
  const error = 'error' in summary ? summary.error : null;
  const exitCode = error ? error.exitCode : flagged > 0 ? ExitCode.Partial : ExitCode.Ok;
  return {
    name,
    source,
    outcome: error ? 'failed' : flagged > 0 ? 'partial' : 'ok',
    exitCode,
    durationMs: Date.now() - started,
    counts,
    error,
    summary,
  };
}

function failedStep(name: string, source: Source | null, started: number, err: unknown): RunStepResult {
  const error = toSyncError(err);
  return {
    name,
    source,
    outcome: 'failed',
    exitCode: error.exitCode,
    durationMs: Date.now() - started,
    counts: {},
    error,
    summary: null,
  };
}

async function fetchStep(options: RunOptions, source: Source): Promise<RunStepResult> {
  const started = Date.now();
  const name = `fetch:${source}`;
  try {
    const parts = await openFetch({ ...options, source, target: { kind: 'kafka', kafka: options.kafka } });
    try {
      const lock = { runId: options.runId, logger: parts.logger };
      const summary = await withLock(parts.db, name, lock, () =>
        fetch({
          connector: parts.connector,
          db: parts.db,
          output: parts.output,
          mode: options.fetchMode,
          rejectsPath: parts.rejectsPath,
          ...parts.limits,
          onProgress: (p) => options.onProgress?.(name, { records: p.records, pages: p.pages }),
          ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          logger: parts.logger,
        }),
      );
      return stepOf(name, source, started, summary, fetchCounts(summary), summary.rejects);
    } finally {
      await parts.close();
    }
  } catch (err) {
    return failedStep(name, source, started, err);
  }
}

async function consumeStep(options: RunOptions): Promise<RunStepResult> {
  const started = Date.now();
  try {
    const parts = await openConsume({ ...options, flags: { ...options.flags, once: true } });
    try {
      const lock = { runId: options.runId, logger: parts.logger };
      const summary = await withLock(parts.db, `consume:${parts.options.group}`, lock, () =>
        consume({
          ...parts.options,
          ...(options.signal ? { signal: options.signal } : {}),
          onProgress: (p) =>
            options.onProgress?.('consume', {
              consumed: p.consumed,
              delivered: p.delivered,
              ...(p.lagLeft === null ? {} : { lagLeft: p.lagLeft }),
            }),
        }),
      );
      return stepOf('consume', null, started, summary, consumeCounts(summary), summary.deadLettered);
    } finally {
      await parts.close();
    }
  } catch (err) {
    return failedStep('consume', null, started, err);
  }
}

/**
 * export-csv --upload of the view as the profile and environment configure it (entity, columns,
 * --out …). Always the whole view: the upload's Idempotency-Key comes from the CSV's bytes, so an
 * unchanged view is acknowledged by Analytics, not stored again. The export's --since is left out on
 * purpose: it shares its name (and SYNCCTL_SINCE) with the fetch backfill's --since.
 */
async function exportStep(options: RunOptions): Promise<RunStepResult> {
  const started = Date.now();
  try {
    const settings = resolveSettings(EXPORT_CSV_SETTINGS, options.settings);
    const { productRefPath } = resolveSettings(CONSUME_SETTINGS, options.settings, options.flags);
    const upload = analyticsConfigFromSettings(options.settings, options.flags ?? {});
    const columns = settings.columns
      ?.split(',')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    const db = await openDb(options.statePath);
    try {
      const summary = await exportCsv({
        db,
        entity: settings.entity as ExportEntity,
        ...(columns && columns.length > 0 ? { columns } : {}),
        explode: settings.explode,
        bom: settings.bom,
        formulaEscape: settings.formulaEscape,
        gzip: settings.gzip,
        ...(settings.out !== undefined ? { out: settings.out } : {}),
        upload,
        productRefPath,
        logger: options.logger,
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: (p) => options.onProgress?.('export', { rows: p.rows }),
      });
      return stepOf('export', null, started, summary, exportCounts(summary), 0);
    } finally {
      await db.close();
    }
  } catch (err) {
    return failedStep('export', null, started, err);
  }
}

async function runSteps(options: RunOptions): Promise<RunStepResult[]> {
  const steps: RunStepResult[] = [];
  const record = (step: RunStepResult) => {
    steps.push(step);
    options.onStep?.(step);
    return step.outcome !== 'failed';
  };
  if (options.steps.includes('fetch')) {
    for (const source of RUN_SOURCES) {
      if (!record(await fetchStep(options, source))) return steps;
    }
  }
  if (options.steps.includes('consume') && !record(await consumeStep(options))) return steps;
  if (options.steps.includes('export')) record(await exportStep(options));
  return steps;
}

/**
 * Runs the job's steps in order, stopping at the first that fails. Throws LockedError when another
 * run of the job holds its lock (nothing is recorded then); every other failure is in the summary.
 */
export async function runJob(options: RunOptions): Promise<RunSummary> {
  const started = new Date();
  const db: Db = await openDb(options.statePath);
  try {
    const lock = await acquireLock(db, `run:${options.job}`, {
      runId: options.runId,
      logger: options.logger,
    });
    try {
      const runs = await Runs.open(db);
      const dead = await runs.markKilled(
        options.job,
        options.runId,
        `killed: it never finished; run ${options.runId} took over the lock run:${options.job}`,
      );
      for (const r of dead)
        options.logger.warn(
          `run ${r.id} of job ${r.job} (started ${r.startedAt}) never finished: marked killed`,
        );
      await runs.start(options.runId, options.job, started);
      const steps = await runSteps(options);
      const failed = steps.find((s) => s.outcome === 'failed');
      const partial = steps.some((s) => s.outcome === 'partial');
      const exitCode = failed ? failed.exitCode : partial ? ExitCode.Partial : ExitCode.Ok;
      const outcome = failed ? 'failed' : partial ? 'partial' : 'ok';
      const ended = new Date();
      const error = failed?.error ?? null;
      await runs.finish(
        options.runId,
        {
          outcome,
          exitCode,
          error: error ? `${failed?.name}: ${error.message}` : null,
          steps: steps.map((s) => ({
            name: s.name,
            outcome: s.outcome,
            exitCode: s.exitCode,
            durationMs: s.durationMs,
            counts: s.counts,
            error: s.error?.message ?? null,
          })),
        },
        ended,
      );
      const lastSuccess = await runs.lastSuccess(options.job);
      return {
        runId: options.runId,
        job: options.job,
        startedAt: started.toISOString(),
        endedAt: ended.toISOString(),
        durationMs: ended.getTime() - started.getTime(),
        outcome,
        exitCode: exitCode as ExitCode,
        steps,
        error,
        lastSuccessAt: lastSuccess?.toISOString() ?? null,
      };
    } finally {
      await lock.release();
    }
  } finally {
    await db.close();
  }
}
