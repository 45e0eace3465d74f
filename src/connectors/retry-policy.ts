/**
 * The one retry policy of our HTTP connectors: what counts as transient, how long to back off, and
 * how a server's Retry-After is read and capped. The CRM source and the Analytics sink hand it to got
 * (gotRetryOptions); the Inventory source's SOAP client has no retry of its own, so its loop asks the
 * same functions.
 */
import type { Method, RetryObject, RetryOptions } from 'got';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff delay; doubles per retry up to backoffLimitMs, with jitter. */
  backoffMs: number;
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the call fails as transient instead. */
  maxRetryAfterMs: number;
}

/**
 * Statuses worth another attempt: got's defaults minus 413, which the Analytics sink answers by
 * splitting the batch (resending the same body cannot help).
 */
export const RETRY_STATUS_CODES: readonly number[] = [408, 429, 500, 502, 503, 504, 521, 522, 524];

/**
 * Network failures worth another attempt, as got and the SOAP client (axios) name them. Besides
 * got's defaults: a 200 whose body could not be parsed and an answer stream cut halfway, which a
 * proxy or a dropped connection produces and a re-request fixes (every retried POST carries an
 * Idempotency-Key, so a request that was stored is answered again, not stored twice).
 */
export const TRANSIENT_ERROR_CODES: readonly string[] = [
  'ETIMEDOUT',
  'ECONNRESET',
  'EADDRINUSE',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'ERR_BODY_PARSE_FAILURE',
  'ERR_READING_RESPONSE_STREAM',
  // axios (soap) names for timeouts, aborted sockets and unreadable answers.
  'ECONNABORTED',
  'ERR_CANCELED',
  'ERR_NETWORK',
  'ERR_BAD_RESPONSE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
];

export function isTransientErrorCode(code: unknown): boolean {
  return typeof code === 'string' && TRANSIENT_ERROR_CODES.includes(code);
}

/**
 * Whether a final HTTP status means "try again later" (for the error a caller sees): every 5xx, 408
 * and 429 — wider than RETRY_STATUS_CODES, because a 501 is still the server's fault, not the request's.
 */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** A Retry-After header (seconds, or an HTTP date) → ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  const text: unknown = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  const raw = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** A wait the server asks for that is longer than the policy allows: the call fails instead of hanging. */
export function retryAfterTooLong(retryAfterMs: number | undefined, policy: RetryPolicy): boolean {
  return retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs;
}

/**
 * The wait before retry `attempt` (1 for the first retry): exponential with "equal jitter", so
 * parallel callers (backfill windows, consumers) do not retry in lockstep. Never 0, which got reads
 * as "stop".
 */
export function backoffDelay(
  attempt: number,
  policy: Pick<RetryPolicy, 'backoffMs' | 'backoffLimitMs'>,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.backoffMs * 2 ** (attempt - 1), policy.backoffLimitMs);
  return Math.max(1, Math.round(ceiling / 2 + random() * (ceiling / 2)));
}

/** A Retry-After is a floor: waited for in full, plus a little jitter so waiting clients do not return at once. */
export function retryAfterDelay(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(retryAfterMs + random() * Math.min(retryAfterMs * 0.1, 1_000)));
}

/** got's `calculateDelay` for a policy: got decides whether to retry, the policy how long to wait. */
export function calculateDelay(
  policy: RetryPolicy,
  retry: Pick<RetryObject, 'attemptCount' | 'computedValue' | 'retryAfter'>,
  random: () => number = Math.random,
): number {
  // 0 is got's verdict "do not retry" (limit reached, method or status not retryable, Retry-After too long).
  if (retry.computedValue === 0) return 0;
  // With a Retry-After, got's computedValue is that wait (already checked against maxRetryAfter).
  if (retry.retryAfter !== undefined && retry.retryAfter > 0)
    return retryAfterDelay(retry.computedValue, random);
  return backoffDelay(retry.attemptCount, policy, random);
}

/**
 * got's retry options for a policy. POST is retried only when the caller lists it — got does not by
 * default, and it is safe only where every request carries an Idempotency-Key.
 */
export function gotRetryOptions(policy: RetryPolicy, methods: Method[]): Partial<RetryOptions> {
  return {
    limit: policy.retries,
    methods,
    statusCodes: [...RETRY_STATUS_CODES],
    errorCodes: [...TRANSIENT_ERROR_CODES],
    backoffLimit: policy.backoffLimitMs,
    maxRetryAfter: policy.maxRetryAfterMs,
    calculateDelay: (retry) => calculateDelay(policy, retry),
  };
}
