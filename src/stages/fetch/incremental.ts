import type { FetchWindow } from '../../connectors/source.js';
import type { Checkpoints } from '../../state/checkpoints.js';
import type { Logger } from '../../log.js';
import { FETCH_SETTINGS, flagOf } from '../../settings/index.js';
import { incrementalCheckpointName, maxTime } from './plan.js';
import {
  emptyProgress,
  type IncrementalCheckpoint,
  type IncrementalRun,
  type WindowProgress,
} from './checkpoint-records.js';
import type { Plan } from './page-loop.js';
import type { FetchOptions } from './types.js';

/** An incremental or --full run: one window, ending at the run's start, continued if it was interrupted. */
export async function planIncremental(
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
    logger.info(
      `discarding the interrupted ${run.mode} run of ${source} (${flagOf(FETCH_SETTINGS, 'restart')})`,
    );
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
