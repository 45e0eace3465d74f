import type { Admin } from 'kafkajs';
import { ExitCode, UsageError, type SyncError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MergeStore } from '../../state/merge-store.js';
import { fetchCommitted, fetchEnds, lagOf, type LagReport } from './offsets.js';
import type { ConsumeCounters, ConsumeSummary, ConsumeTopics, FinishReason } from './types.js';

export interface RunOutcome {
  group: string;
  topics: ConsumeTopics;
  once: boolean;
  counters: ConsumeCounters;
  fatal: SyncError | undefined;
  finishedBy: FinishReason | undefined;
  lagLeft: LagReport | null;
  pendingDeliveries: number | null;
  durationMs: number;
}

/** What is left after the run, each null when it cannot be read (the run's own outcome matters more). */
export async function leftAfterRun(
  admin: Admin,
  store: MergeStore,
  group: string,
  dataTopics: string[],
  logger: Logger,
): Promise<{ lagLeft: LagReport | null; pendingDeliveries: number | null }> {
  let lagLeft: LagReport | null = null;
  try {
    lagLeft = lagOf(await fetchEnds(admin, dataTopics), await fetchCommitted(admin, group, dataTopics));
  } catch (err) {
    logger.debug(`could not compute the lag: ${(err as Error).message}`);
  }
  let pendingDeliveries: number | null = null;
  try {
    pendingDeliveries = await store.pendingTotal();
  } catch {
    pendingDeliveries = null;
  }
  return { lagLeft, pendingDeliveries };
}

/**
 * The run's summary and exit code: the error it stopped on, else partial (exit 3) when anything was
 * dead-lettered. A usage error is thrown instead: there is no run to summarise.
 */
export function summarize(run: RunOutcome): ConsumeSummary {
  const { counters: c, fatal: error, finishedBy } = run;
  if (error instanceof UsageError) throw error;
  const deadLettered = c.deadLetteredMessages + c.deadLetteredRecords;
  const exitCode: ExitCode = error ? error.exitCode : deadLettered > 0 ? ExitCode.Partial : ExitCode.Ok;
  return {
    group: run.group,
    topics: run.topics,
    once: run.once,
    status: error ? 'failed' : finishedBy === 'signal' ? 'stopped' : 'completed',
    finishedBy: finishedBy ?? 'end-offsets',
    consumed: c.consumed,
    tombstones: c.tombstones,
    merged: c.merged,
    unchanged: c.unchanged,
    stale: c.stale,
    dirtied: c.dirtied,
    delivered: c.delivered,
    skippedDuplicate: c.skippedDuplicate,
    deadLettered,
    deadLetteredMessages: c.deadLetteredMessages,
    deadLetteredRecords: c.deadLetteredRecords,
    retries: c.retries,
    sinkBatches: c.sinkBatches,
    commits: c.commits,
    lagLeft: run.lagLeft,
    pendingDeliveries: run.pendingDeliveries,
    durationMs: run.durationMs,
    error: error ?? null,
    exitCode,
  };
}
