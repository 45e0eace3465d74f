import { toKafkaError } from '../../connectors/kafka.js';
import { KafkaError, type SyncError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { sleep } from './run-control.js';

/**
 * kafkajs protocol errors (all marked retriable) of a group coordinator that is not ready yet: a
 * broker just started and is still loading `__consumer_offsets`, or the coordinator is moving.
 */
const COORDINATOR_NOT_READY = new Set([
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
]);

/** Whether the error (or one it wraps, e.g. kafkajs's "retries exceeded") says the group coordinator is not ready yet. */
export function isCoordinatorNotReady(err: unknown): boolean {
  let current = err;
  for (let depth = 0; depth < 10 && current !== null && typeof current === 'object'; depth++) {
    const e = current as {
      name?: unknown;
      type?: unknown;
      retriable?: unknown;
      cause?: unknown;
      originalError?: unknown;
    };
    // kafkajs gives up finding a coordinator while `__consumer_offsets` has no leader yet.
    if (e.name === 'KafkaJSGroupCoordinatorNotFound') return true;
    if (e.retriable === true && typeof e.type === 'string' && COORDINATOR_NOT_READY.has(e.type)) return true;
    current = e.cause ?? e.originalError;
  }
  return false;
}

export interface StartupRetryOptions {
  /** Give up (rethrow the last error) once the next attempt would start later than this after the first. */
  timeoutMs: number;
  logger: Logger;
  /** What is being done, for the log line: "reading the group's committed offsets". */
  action: string;
  /** First backoff; it doubles up to 2 s. */
  initialDelayMs?: number;
}

/**
 * Runs a start-up step again while the group coordinator is not ready, with backoff and within a
 * bound: right after a broker starts, the first `consume --once` would otherwise fail for nothing.
 * Any other error is thrown at once.
 */
export async function retryWhileCoordinatorStarts<T>(
  fn: () => Promise<T>,
  o: StartupRetryOptions,
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isCoordinatorNotReady(err)) throw err;
      const delay = Math.min(2_000, (o.initialDelayMs ?? 250) * 2 ** (attempt - 1));
      if (Date.now() + delay > deadline) throw err;
      o.logger.warn(
        `the group coordinator is not ready while ${o.action} (${(err as Error).message}); retrying in ${(delay / 1000).toFixed(1)} s`,
      );
      await sleep(delay);
    }
  }
}

/**
 * A start-up step that failed, in operator terms. A coordinator still not ready at the bound is
 * transient all the same (exit 75: a later run gets past it), whatever class kafkajs gave it.
 */
export function startupFailure(err: unknown, brokers: string[], action: string): SyncError {
  if (isCoordinatorNotReady(err)) {
    return new KafkaError(`Kafka failed while ${action}: ${(err as Error).message}`, true, {
      cause: err,
      hint: 'the group coordinator was not ready (a broker that just started); run again',
    });
  }
  return toKafkaError(err, brokers, action);
}
