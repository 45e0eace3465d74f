import { describe, expect, it } from 'vitest';
import { ExitCode, InterruptedError, UsageError } from '../../../src/errors.js';
import { summarize, type RunOutcome } from '../../../src/stages/consume/summary.js';
import { newCounters } from '../../../src/stages/consume/types.js';

function outcome(over: Partial<RunOutcome> = {}): RunOutcome {
  return {
    group: 'g',
    topics: { customers: 'c', products: 'p', deadLetter: 'd' },
    once: true,
    counters: newCounters(),
    fatal: undefined,
    finishedBy: 'end-offsets',
    lagLeft: { total: 0, partitions: {} },
    pendingDeliveries: 0,
    durationMs: 12,
    ...over,
  };
}

describe('summarize', () => {
  it('a clean run completes with exit 0 and carries every count', () => {
    const counters = { ...newCounters(), consumed: 5, merged: 4, delivered: 3, commits: 2 };
    const s = summarize(outcome({ counters }));
    expect(s).toMatchObject({
      status: 'completed',
      finishedBy: 'end-offsets',
      consumed: 5,
      merged: 4,
      delivered: 3,
      commits: 2,
      deadLettered: 0,
      error: null,
      exitCode: ExitCode.Ok,
    });
  });

  it('anything dead-lettered makes it partial (exit 3), counting messages and records', () => {
    const counters = { ...newCounters(), deadLetteredMessages: 2, deadLetteredRecords: 1 };
    const s = summarize(outcome({ counters }));
    expect(s.deadLettered).toBe(3);
    expect(s.exitCode).toBe(ExitCode.Partial);
  });

  it('an error fails the run with its exit code; a stop by signal without one is "stopped"', () => {
    const err = new InterruptedError('stopped');
    const failed = summarize(outcome({ fatal: err, finishedBy: 'signal' }));
    expect(failed).toMatchObject({ status: 'failed', error: err, exitCode: err.exitCode });
    const stopped = summarize(outcome({ once: false, finishedBy: 'signal' }));
    expect(stopped).toMatchObject({ status: 'stopped', exitCode: ExitCode.Ok });
    expect(summarize(outcome({ finishedBy: undefined })).finishedBy).toBe('end-offsets');
  });

  it('throws a usage error instead of summarising', () => {
    expect(() => summarize(outcome({ fatal: new UsageError('topic "x" does not exist') }))).toThrow(
      UsageError,
    );
  });
});
