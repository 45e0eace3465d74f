import { InterruptedError, toSyncError, type SyncError } from '../../errors.js';
import type { FinishReason } from './types.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How a run ends: the first reason to stop wins (end offsets reached, a signal, an error, the idle
 * timeout), the first error is the one reported, and `forced` marks a stop that gave up waiting for
 * work in flight. Every part of the run checks it before doing anything that would commit.
 */
export class RunControl {
  fatal: SyncError | undefined;
  finishedBy: FinishReason | undefined;
  /** The shutdown timeout expired: nothing may commit any more. */
  forced = false;
  stopRequested = false;
  /** Kafka batches being handled now. */
  inFlight = 0;
  /** When this instance or the group last showed progress (the --once idle timeout counts from it). */
  lastActivity = Date.now();
  /** Resolves once a stop is requested. */
  readonly stopped: Promise<void>;
  private resolveStop: () => void = () => {};
  private readonly onAbort = () => this.requestStop('signal');
  private signal: AbortSignal | undefined;

  constructor() {
    this.stopped = new Promise<void>((resolve) => (this.resolveStop = resolve));
  }

  /** Nothing may commit: the run failed or gave up waiting. */
  get halted(): boolean {
    return this.fatal !== undefined || this.forced;
  }

  requestStop(why: FinishReason): void {
    this.finishedBy ??= why;
    this.stopRequested = true;
    this.resolveStop();
  }

  fail(err: unknown): void {
    this.fatal ??= toSyncError(err);
    this.requestStop('error');
  }

  /** Fails the run and names why it finished, even if another reason came first. */
  giveUp(err: SyncError, why: FinishReason): void {
    this.fail(err);
    this.finishedBy = why;
  }

  touch(now = Date.now()): void {
    this.lastActivity = now;
  }

  /** A stop requested through the caller's signal (Ctrl-C). */
  watch(signal: AbortSignal | undefined): void {
    this.signal = signal;
    if (signal?.aborted) this.requestStop('signal');
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  unwatch(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /**
   * Waits at most `timeoutMs` for `work` (delivering and committing what was merged, leaving the
   * group); past it the run is forced to stop and fails, so a stuck delivery cannot keep a stopping
   * process alive.
   */
  async finishWithin(work: Promise<unknown>, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      work.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    this.forced = true;
    this.fatal ??= new InterruptedError(
      `deliveries in flight did not finish within ${timeoutMs / 1000} s of stopping; what they cover was not committed and will be read again`,
    );
  }
}
