import { resolve } from 'node:path';
import pLimit from 'p-limit';
import { InterruptedError, toSyncError, UsageError, type SyncError } from '../errors.js';
import type { FetchWindow, SourceConnector, SourcePage } from '../connectors/source.js';
import type { Envelope, Source } from '../records/envelope.js';
import type { Db } from '../state/db.js';
import { Checkpoints } from '../state/checkpoints.js';
import { silentLogger, type Logger } from '../log.js';
import {
  FetchRejects,
  openOutput,
  type FetchOutput,
  type OutputMark,
  type OutputSpec,
} from './fetch-output.js';
import {
  backfillPrefix,
  backfillRangeName,
  backfillWindowName,
  clampBelow,
  describeWindowSpec,
  incrementalCheckpointName,
  maxTime,
  splitWindows,
  type TimeWindow,
  type WindowSpec,
} from './fetch-plan.js';

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

export type FetchMode =
  | { kind: 'incremental' }
  | { kind: 'full' }
  | {
      kind: 'backfill';
      since: string;
      /** Exclusive end; omitted means "now", fixed when the range is first started. */
      until?: string;
      window: WindowSpec;
    };

export interface FetchOptions {
  connector: SourceConnector;
  db: Db;
  output: OutputSpec;
  mode: FetchMode;
  /** Only continue interrupted work; start nothing new (`--resume`). */
  resumeOnly?: boolean;
  /** Throw away interrupted progress (and, for a backfill range, finished windows) first (`--restart`). */
  restart?: boolean;
  rejectsPath: string;
  /** Backfill windows fetched at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: FetchProgress) => void;
  logger?: Logger;
  now?: () => Date;
}

export interface FetchProgress {
  pages: number;
  records: number;
  windowsDone: number;
  windowsTotal: number;
}

/** Where a run that did not complete stopped: the window, and how far its durable progress reaches (pages counted across resumes). */
export interface FetchStop {
  window: { since: string | null; until: string | null } | null;
  durablePages: number | null;
}

export interface BackfillSummary {
  since: string;
  until: string;
  window: string;
  concurrency: number;
  windows: number;
  /** Finished in this run. */
  completed: number;
  /** Already finished by an earlier run: not fetched again. */
  alreadyDone: number;
  /** Started by an earlier run and continued from its cursor. */
  resumed: number;
  failed: number;
  /** Not finished (stopped or never started) — a rerun continues them. */
  remaining: number;
  checkpoint: string;
}

export interface FetchSummary {
  source: Source;
  mode: 'incremental' | 'full' | 'backfill';
  status: 'completed' | 'failed' | 'interrupted' | 'nothing-to-resume';
  output: { kind: FetchOutput['kind']; target: string };
  /** Whether interrupted progress of an earlier run was continued. */
  resumed: boolean;
  window: { since: string | null; until: string | null } | null;
  pages: number;
  records: number;
  upserts: number;
  deletes: number;
  rejects: number;
  rejectsFile: string | null;
  requests: number;
  retries: number;
  durationMs: number;
  /** The incremental checkpoint: its high-water mark before and after this run (unchanged by backfills). */
  checkpoint: { name: string; before: string | null; after: string | null };
  backfill: BackfillSummary | null;
  /** Why the run did not complete (status failed or interrupted); printed by --json as {code, message, hint, retryable, exitCode}. */
  error: SyncError | null;
  stoppedAt: FetchStop | null;
}

interface WindowProgress {
  since: string | null;
  until: string | null;
  /** Position after the last durable page; undefined before the first. */
  cursor?: unknown;
  /** The last durable page said the window was exhausted. */
  exhausted: boolean;
  maxHighWater: string | null;
  pages: number;
  records: number;
  deletes: number;
  rejects: number;
  out: OutputMark | null;
  startedAt: string;
  updatedAt: string;
}

interface IncrementalRun extends WindowProgress {
  mode: 'incremental' | 'full';
}

interface IncrementalCheckpoint {
  highWater: string | null;
  lastRun: {
    mode: 'incremental' | 'full';
    since: string | null;
    until: string | null;
    completedAt: string;
    records: number;
  } | null;
  run: IncrementalRun | null;
}

interface RangeRecord {
  kind: 'range';
  since: string;
  until: string;
  openEnded: boolean;
  window: WindowSpec;
  status: 'running' | 'done';
  startedAt: string;
  completedAt: string | null;
}

interface WindowRecord extends WindowProgress {
  kind: 'window';
  status: 'running' | 'done';
}

class Totals {
  pages = 0;
  records = 0;
  deletes = 0;
  windowsDone = 0;
  windowsTotal = 1;
}

function emptyProgress(window: FetchWindow, now: Date): WindowProgress {
  return {
    since: window.since ?? null,
    until: window.until ?? null,
    exhausted: false,
    maxHighWater: null,
    pages: 0,
    records: 0,
    deletes: 0,
    rejects: 0,
    out: null,
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

function windowOf(progress: Pick<WindowProgress, 'since' | 'until'>): FetchWindow {
  const window: FetchWindow = {};
  if (progress.since !== null) window.since = progress.since;
  if (progress.until !== null) window.until = progress.until;
  return window;
}

function maxEnvelopeTime(envelopes: Envelope[]): string | null {
  let max: string | null = null;
  for (const e of envelopes) max = maxTime(max, e.sourceUpdatedAt);
  return max;
}

class Stop extends Error {}

/** Everything one invocation shares between its windows. */
class Run {
  readonly totals = new Totals();
  failure: { error: SyncError; progress: WindowProgress | null } | undefined;
  interrupted = false;

  constructor(
    readonly options: FetchOptions,
    readonly output: FetchOutput,
    readonly rejects: FetchRejects,
    readonly checkpoints: Checkpoints,
    readonly logger: Logger,
  ) {}

  get stopping(): boolean {
    return this.failure !== undefined || this.interrupted || this.options.signal?.aborted === true;
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  progress(): void {
    const t = this.totals;
    this.options.onProgress?.({
      pages: t.pages,
      records: t.records,
      windowsDone: t.windowsDone,
      windowsTotal: t.windowsTotal,
    });
  }

  fail(error: unknown, progress: WindowProgress | null): void {
    // The first failure is the one to report; later ones are usually its echo from other windows.
    if (this.failure === undefined) this.failure = { error: toSyncError(error), progress };
  }

  /**
   * Moves the envelopes the output cannot take (over a topic's size limit) to the page's rejects, so
   * one oversized record is kept in the reject file instead of failing the whole page.
   */
  private refuseOversized(page: SourcePage): SourcePage {
    const refuse = this.output.refuse?.bind(this.output);
    if (refuse === undefined) return page;
    const envelopes: Envelope[] = [];
    const rejects = [...page.rejects];
    for (const envelope of page.envelopes) {
      const reason = refuse(envelope);
      if (reason === undefined) envelopes.push(envelope);
      else
        rejects.push({
          reason: `${envelope.entity} ${envelope.id}: ${reason}`,
          raw: JSON.stringify(envelope),
        });
    }
    return rejects.length === page.rejects.length ? page : { ...page, envelopes, rejects };
  }

  /** Makes one page durable, then records the progress it proves. */
  private async commit(
    page: SourcePage,
    progress: WindowProgress,
    persist: (p: WindowProgress) => Promise<void>,
  ): Promise<void> {
    page = this.refuseOversized(page);
    const mark = page.envelopes.length > 0 ? await this.output.write(page.envelopes) : undefined;
    const pageNo = progress.pages + 1;
    await this.rejects.add(page.rejects, {
      source: this.options.connector.source,
      window: { since: progress.since, until: progress.until },
      page: pageNo,
    });
    let deletes = 0;
    for (const e of page.envelopes) if (e.op === 'delete') deletes++;
    const seen = maxTime(page.highWater, maxEnvelopeTime(page.envelopes));
    const next: WindowProgress = {
      ...progress,
      cursor: page.cursor,
      exhausted: page.cursor === null || page.cursor === undefined,
      maxHighWater: maxTime(progress.maxHighWater, clampBelow(seen, progress.until ?? undefined)),
      pages: pageNo,
      records: progress.records + page.envelopes.length,
      deletes: progress.deletes + deletes,
      rejects: progress.rejects + page.rejects.length,
      out: mark ?? progress.out,
      updatedAt: this.now().toISOString(),
    };
    await persist(next);
    Object.assign(progress, next);
    this.totals.pages++;
    this.totals.records += page.envelopes.length;
    this.totals.deletes += deletes;
    this.progress();
  }

  /**
   * Pages through one window from its stored cursor. The next page is fetched while the previous one
   * is being made durable — never more than that, so memory holds at most two pages per window.
   * Returns true when the window is exhausted; false when it stopped early (failure elsewhere, signal).
   */
  async drain(progress: WindowProgress, persist: (p: WindowProgress) => Promise<void>): Promise<boolean> {
    if (progress.exhausted) return true;
    const iterable = this.options.connector.pages(windowOf(progress), progress.cursor);
    const iterator = iterable[Symbol.asyncIterator]();
    let inFlight: Promise<void> | undefined;
    let commitError: unknown;
    let finished = false;
    const settle = async () => {
      if (inFlight) await inFlight;
      inFlight = undefined;
      if (commitError !== undefined) throw commitError;
    };
    try {
      for (;;) {
        if (this.stopping) {
          await settle();
          return false;
        }
        let next: IteratorResult<SourcePage>;
        try {
          next = await this.nextPage(iterator);
        } catch (err) {
          // The pages before the bad one still count: let the one being committed finish first.
          await settle();
          throw err;
        }
        await settle();
        if (next.done) {
          finished = true;
          return true;
        }
        inFlight = this.commit(next.value, progress, persist).catch((err: unknown) => {
          commitError = err;
        });
      }
    } finally {
      if (!finished) {
        // Do not wait: a generator blocked in a request only returns once that request ends.
        void iterator.return?.()?.catch(() => {});
      }
    }
  }

  /** The next page, or a Stop as soon as the run is interrupted (a hung request must not hold Ctrl-C). */
  private nextPage(iterator: AsyncIterator<SourcePage>): Promise<IteratorResult<SourcePage>> {
    const signal = this.options.signal;
    if (!signal) return iterator.next();
    if (signal.aborted) return Promise.reject(new Stop());
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new Stop());
      signal.addEventListener('abort', onAbort, { once: true });
      iterator.next().then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /** drain() with failures and interruptions recorded instead of thrown. */
  async drainSafely(
    progress: WindowProgress,
    persist: (p: WindowProgress) => Promise<void>,
  ): Promise<boolean> {
    try {
      const done = await this.drain(progress, persist);
      if (!done && this.options.signal?.aborted) this.interrupted = true;
      return done;
    } catch (err) {
      if (err instanceof Stop) {
        this.interrupted = true;
        return false;
      }
      this.fail(err, progress);
      return false;
    }
  }
}

function failureOf(run: Run): { error: SyncError; stoppedAt: FetchStop } | null {
  if (run.failure) {
    const { error, progress } = run.failure;
    return {
      error,
      stoppedAt: {
        window: progress ? { since: progress.since, until: progress.until } : null,
        durablePages: progress ? progress.pages : null,
      },
    };
  }
  if (run.interrupted) {
    return {
      error: new InterruptedError('fetch interrupted'),
      stoppedAt: { window: null, durablePages: null },
    };
  }
  return null;
}

/** The file offset a resumed run continues from: the furthest durable write into the same file. */
function resumeOffset(spec: OutputSpec, progresses: (WindowProgress | undefined)[]): number | undefined {
  if (spec.kind !== 'file') return undefined;
  const target = resolve(spec.path);
  let offset: number | undefined;
  for (const p of progresses) {
    if (p?.out && p.out.path === target) offset = Math.max(offset ?? 0, p.out.bytes);
  }
  return offset;
}

interface Plan {
  mode: FetchSummary['mode'];
  /** Progress of earlier runs this invocation continues (for the output's resume offset). */
  earlier: (WindowProgress | undefined)[];
  resumed: boolean;
  execute(run: Run): Promise<Pick<FetchSummary, 'window' | 'backfill'> & { after: string | null }>;
}

async function planIncremental(
  options: FetchOptions,
  checkpoints: Checkpoints,
  mode: 'incremental' | 'full',
  now: Date,
  logger: Logger,
): Promise<{ plan: Plan | null; before: string | null }> {
  const source = options.connector.source;
  const name = incrementalCheckpointName(source);
  const stored = (await checkpoints.get<IncrementalCheckpoint>(name)) ?? {
    highWater: null,
    lastRun: null,
    run: null,
  };
  const before = stored.highWater;
  let run = stored.run;
  // A run that stopped before its first durable page has nothing to continue: start afresh, with a new window.
  if (run && run.pages === 0 && !run.exhausted) run = null;
  if (run && options.restart) {
    logger.info(`discarding the interrupted ${run.mode} run of ${source} (--restart)`);
    run = null;
  }
  // A full run covers everything an interrupted incremental run would have fetched, so it supersedes it;
  // an interrupted full run is only continued by another --full (or plain) run.
  if (run && mode === 'full' && run.mode !== 'full') run = null;
  const resumed = run !== null;
  if (!run) {
    if (options.resumeOnly) return { plan: null, before };
    const window: FetchWindow = { until: now.toISOString() };
    if (mode === 'incremental' && stored.highWater !== null) window.since = stored.highWater;
    run = { ...emptyProgress(window, now), mode };
  } else {
    logger.info(
      `resuming the interrupted ${run.mode} run of ${source} after page ${run.pages} (${run.records} records already done)`,
    );
  }
  const current: IncrementalRun = run;
  const plan: Plan = {
    mode: current.mode,
    earlier: resumed ? [current] : [],
    resumed,
    execute: async (r) => {
      const persist = async (p: WindowProgress) => {
        await checkpoints.set(name, { ...stored, run: { ...p, mode: current.mode } });
      };
      const done = await r.drainSafely(current, persist);
      let after = before;
      if (done) {
        after = maxTime(stored.highWater, current.maxHighWater);
        const completed: IncrementalCheckpoint = {
          highWater: after,
          lastRun: {
            mode: current.mode,
            since: current.since,
            until: current.until,
            completedAt: r.now().toISOString(),
            records: current.records,
          },
          run: null,
        };
        await checkpoints.set(name, completed);
        r.totals.windowsDone = 1;
      }
      return { window: { since: current.since, until: current.until }, backfill: null, after };
    },
  };
  return { plan, before };
}

async function findRange(
  checkpoints: Checkpoints,
  source: Source,
  predicate: (r: RangeRecord) => boolean,
): Promise<RangeRecord[]> {
  const all = await checkpoints.list(backfillPrefix(source));
  return all
    .map((c) => c.value as RangeRecord | WindowRecord)
    .filter((v): v is RangeRecord => v.kind === 'range' && predicate(v));
}

async function planBackfill(
  options: FetchOptions,
  checkpoints: Checkpoints,
  range: RangeRecord,
  isNew: boolean,
  logger: Logger,
): Promise<Plan> {
  const source = options.connector.source;
  const concurrency = options.concurrency ?? 4;
  const rangeName = backfillRangeName(source, range.since, range.until);
  const windows = splitWindows(range.since, range.until, range.window);
  const stored = new Map<string, WindowRecord>();
  for (const c of await checkpoints.list(`${rangeName}:`)) {
    const v = c.value as WindowRecord;
    if (v.kind === 'window' && v.since !== null) stored.set(v.since, v);
  }
  const resumed = !isNew && stored.size > 0;
  if (resumed) {
    const done = [...stored.values()].filter((w) => w.status === 'done').length;
    logger.info(
      `continuing backfill ${range.since} → ${range.until}: ${done}/${windows.length} windows already done`,
    );
  }
  return {
    mode: 'backfill',
    earlier: [...stored.values()],
    resumed,
    execute: async (r) => {
      if (isNew) await checkpoints.set(rangeName, range);
      const summary: BackfillSummary = {
        since: range.since,
        until: range.until,
        window: describeWindowSpec(range.window),
        concurrency,
        windows: windows.length,
        completed: 0,
        alreadyDone: 0,
        resumed: 0,
        failed: 0,
        remaining: 0,
        checkpoint: rangeName,
      };
      r.totals.windowsTotal = windows.length;
      const limit = pLimit(concurrency);
      const runWindow = async (w: TimeWindow): Promise<void> => {
        const windowName = backfillWindowName(source, range.since, range.until, w.since);
        const previous = stored.get(w.since);
        if (previous?.status === 'done') {
          summary.alreadyDone++;
          r.totals.windowsDone++;
          return;
        }
        if (r.stopping) {
          summary.remaining++;
          return;
        }
        if (previous) summary.resumed++;
        const progress: WindowProgress = previous ?? emptyProgress(w, r.now());
        const persist = async (p: WindowProgress) => {
          await checkpoints.set(windowName, {
            ...p,
            kind: 'window',
            status: 'running',
          } satisfies WindowRecord);
        };
        const done = await r.drainSafely(progress, persist);
        if (done) {
          await checkpoints.set(windowName, {
            ...progress,
            kind: 'window',
            status: 'done',
          } satisfies WindowRecord);
          summary.completed++;
          r.totals.windowsDone++;
          r.progress();
        } else if (r.failure?.progress === progress) {
          summary.failed++;
        } else {
          summary.remaining++;
        }
      };
      await Promise.all(windows.map((w) => limit(() => runWindow(w))));
      if (summary.alreadyDone + summary.completed === windows.length) {
        await checkpoints.set(rangeName, { ...range, status: 'done', completedAt: r.now().toISOString() });
      }
      return { window: { since: range.since, until: range.until }, backfill: summary, after: null };
    },
  };
}

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
      throw new UsageError(`${open.length} unfinished ${source} backfills; say which one to resume`, {
        hint: open
          .map((r) => `syncctl fetch --source ${source} --since ${r.since} --until ${r.until}`)
          .join('  |  '),
      });
    }
    const range = open[0] as RangeRecord;
    return { plan: await planBackfill(options, checkpoints, range, false, logger), before: result.before };
  }

  const stored = await checkpoints.get<IncrementalCheckpoint>(incrementalCheckpointName(source));
  const before = stored?.highWater ?? null;
  let until = mode.until;
  let openEnded = false;
  if (until === undefined) {
    // "Until now" is fixed when the range starts, so rerunning the same command resumes the same range.
    openEnded = true;
    const open = await findRange(
      checkpoints,
      source,
      (r) => r.openEnded && r.since === mode.since && r.status !== 'done',
    );
    until = options.restart ? undefined : open.at(-1)?.until;
    until ??= now.toISOString();
  }
  const rangeName = backfillRangeName(source, mode.since, until);
  if (options.restart) {
    const removed = await checkpoints.delete(rangeName);
    if (removed > 0) logger.info(`discarded the progress of backfill ${mode.since} → ${until} (--restart)`);
  }
  const existing = await checkpoints.get<RangeRecord>(rangeName);
  if (!existing && options.resumeOnly) return { plan: null, before };
  let range: RangeRecord;
  if (existing) {
    range = existing;
    if (describeWindowSpec(existing.window) !== describeWindowSpec(mode.window)) {
      logger.warn(
        `this backfill was started with --window ${describeWindowSpec(existing.window)}; keeping it so finished windows are not fetched again (--restart to re-cut)`,
      );
    }
  } else {
    range = {
      kind: 'range',
      since: mode.since,
      until,
      openEnded,
      window: mode.window,
      status: 'running',
      startedAt: now.toISOString(),
      completedAt: null,
    };
  }
  const plan = await planBackfill(options, checkpoints, range, !existing, logger);
  return { plan, before };
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
  const rejects = new FetchRejects(options.rejectsPath, plan.resumed);
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
    status: run.failure ? 'failed' : run.interrupted ? 'interrupted' : 'completed',
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
