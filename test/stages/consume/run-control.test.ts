import { describe, expect, it } from 'vitest';
import { InterruptedError, KafkaError } from '../../../src/errors.js';
import { RunControl } from '../../../src/stages/consume/run-control.js';

describe('RunControl', () => {
  it('keeps the first reason to stop and the first error', async () => {
    const c = new RunControl();
    expect(c.stopRequested).toBe(false);
    c.requestStop('end-offsets');
    c.fail(new KafkaError('first', true));
    c.fail(new KafkaError('second', true));
    await c.stopped;
    expect(c.finishedBy).toBe('end-offsets');
    expect(c.fatal?.message).toBe('first');
    expect(c.halted).toBe(true);
  });

  it('turns anything thrown into a SyncError', () => {
    const c = new RunControl();
    c.fail(new Error('boom'));
    expect(c.finishedBy).toBe('error');
    expect(c.fatal?.code).toBe('E_INTERNAL');
  });

  it('names the idle timeout as the reason even after another', () => {
    const c = new RunControl();
    c.requestStop('signal');
    c.giveUp(new InterruptedError('no progress'), 'idle-timeout');
    expect(c.finishedBy).toBe('idle-timeout');
  });

  it('stops on the caller’s signal, also one aborted before the run, and lets go of it', () => {
    const early = new AbortController();
    early.abort();
    const a = new RunControl();
    a.watch(early.signal);
    expect(a.finishedBy).toBe('signal');

    const later = new AbortController();
    const b = new RunControl();
    b.watch(later.signal);
    expect(b.stopRequested).toBe(false);
    later.abort();
    expect(b.finishedBy).toBe('signal');

    const unwatched = new AbortController();
    const c = new RunControl();
    c.watch(unwatched.signal);
    c.unwatch();
    unwatched.abort();
    expect(c.stopRequested).toBe(false);
  });

  it('waits for work that finishes in time, and forces the stop when it does not', async () => {
    const ok = new RunControl();
    await ok.finishWithin(new Promise((resolve) => setTimeout(resolve, 10)), 1_000);
    expect(ok.forced).toBe(false);
    expect(ok.fatal).toBeUndefined();

    const stuck = new RunControl();
    await stuck.finishWithin(new Promise(() => {}), 50);
    expect(stuck.forced).toBe(true);
    expect(stuck.fatal).toBeInstanceOf(InterruptedError);
    expect(stuck.fatal?.message).toMatch(/did not finish within 0.05 s of stopping/);
    expect(stuck.halted).toBe(true);
  });
});
