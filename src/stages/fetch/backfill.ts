import pLimit from 'p-limit';
import type { Checkpoints } from '../../state/checkpoints.js';
import type { Logger } from '../../log.js';
import { FETCH_SETTINGS, flagOf } from '../../settings/index.js';
import {
  backfillRangeName,
  backfillWindowName,
  describeWindowSpec,
  incrementalCheckpointName,
  splitWindows,
  type TimeWindow,
} from './plan.js';
import {
  emptyProgress,
  findRange,
  type IncrementalCheckpoint,
  type RangeRecord,
  type WindowProgress,
  type WindowRecord,
} from './checkpoint-records.js';
import type { Plan } from './page-loop.js';
import type { BackfillSummary, FetchMode, FetchOptions } from './types.js';

/** A --since/--until backfill: a range cut into windows fetched concurrently, each resumable on its own. */
export async function planBackfill(
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

/** A backfill of [mode.since, mode.until): a new range, or the same one an earlier run started. */
export async function planBackfillRange(
  options: FetchOptions,
  checkpoints: Checkpoints,
  mode: Extract<FetchMode, { kind: 'backfill' }>,
  now: Date,
  logger: Logger,
): Promise<{ plan: Plan | null; before: string | null }> {
  const source = options.connector.source;
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
    if (removed > 0)
      logger.info(
        `discarded the progress of backfill ${mode.since} → ${until} (${flagOf(FETCH_SETTINGS, 'restart')})`,
      );
  }
  const existing = await checkpoints.get<RangeRecord>(rangeName);
  if (!existing && options.resumeOnly) return { plan: null, before };
  let range: RangeRecord;
  if (existing) {
    range = existing;
    if (describeWindowSpec(existing.window) !== describeWindowSpec(mode.window)) {
      logger.warn(
        `this backfill was started with ${flagOf(FETCH_SETTINGS, 'window')} ${describeWindowSpec(existing.window)}; keeping it so finished windows are not fetched again (${flagOf(FETCH_SETTINGS, 'restart')} to re-cut)`,
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
