import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  calculateDelay,
  gotRetryOptions,
  isTransientErrorCode,
  isTransientStatus,
  parseRetryAfter,
  retryAfterDelay,
  retryAfterTooLong,
  type RetryPolicy,
} from '../../src/connectors/retry-policy.js';

const policy: RetryPolicy = { retries: 3, backoffMs: 100, backoffLimitMs: 1_000, maxRetryAfterMs: 5_000 };

describe('parseRetryAfter', () => {
  it('reads seconds or an HTTP date, and nothing else', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter(' 3 ')).toBe(3000);
    expect(parseRetryAfter(['4', '9'])).toBe(4000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    // A date in the past means "now", not a negative wait.
    expect(parseRetryAfter(new Date(1_000).toUTCString(), 4000)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('retryAfterTooLong', () => {
  it('refuses only waits beyond the cap', () => {
    expect(retryAfterTooLong(undefined, policy)).toBe(false);
    expect(retryAfterTooLong(5_000, policy)).toBe(false);
    expect(retryAfterTooLong(5_001, policy)).toBe(true);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially with equal jitter up to the cap, and is never 0', () => {
    for (const [attempt, lo, hi] of [
      [1, 50, 100],
      [3, 200, 400],
      [10, 500, 1_000],
    ] as const) {
      expect(backoffDelay(attempt, policy, () => 0)).toBe(lo);
      expect(backoffDelay(attempt, policy, () => 1)).toBe(hi);
      const d = backoffDelay(attempt, policy);
      expect(d).toBeGreaterThanOrEqual(lo);
      expect(d).toBeLessThanOrEqual(hi);
    }
    expect(backoffDelay(1, { backoffMs: 0, backoffLimitMs: 0 }, () => 0)).toBe(1);
  });
});

describe('retryAfterDelay', () => {
  it('waits at least the Retry-After, with at most 10 % (≤ 1 s) on top', () => {
    expect(retryAfterDelay(2_000, () => 0)).toBe(2_000);
    expect(retryAfterDelay(2_000, () => 1)).toBe(2_200);
    expect(retryAfterDelay(60_000, () => 1)).toBe(61_000);
  });
});

describe('calculateDelay (got)', () => {
  it("keeps got's verdict to stop, honours Retry-After and otherwise backs off", () => {
    expect(calculateDelay(policy, { attemptCount: 1, computedValue: 0, retryAfter: undefined })).toBe(0);
    expect(calculateDelay(policy, { attemptCount: 1, computedValue: 0, retryAfter: 9_000 })).toBe(0);
    const ra = calculateDelay(policy, { attemptCount: 1, computedValue: 2_000, retryAfter: 2_000 });
    expect(ra).toBeGreaterThanOrEqual(2_000);
    expect(ra).toBeLessThanOrEqual(2_200);
    expect(
      calculateDelay(policy, { attemptCount: 3, computedValue: 1, retryAfter: undefined }, () => 1),
    ).toBe(400);
  });
});

describe('gotRetryOptions', () => {
  it('carries the policy and only the methods the caller allows', () => {
    const options = gotRetryOptions(policy, ['POST']);
    expect(options).toMatchObject({
      limit: 3,
      methods: ['POST'],
      backoffLimit: 1_000,
      maxRetryAfter: 5_000,
    });
    expect(options.statusCodes).toEqual(expect.arrayContaining([408, 429, 500, 503]));
    // 413 is answered by splitting the batch, not by resending it.
    expect(options.statusCodes).not.toContain(413);
    expect(options.errorCodes).toEqual(expect.arrayContaining(['ECONNRESET', 'ERR_BODY_PARSE_FAILURE']));
  });
});

describe('transient classification', () => {
  it('treats 408, 429 and every 5xx as transient, other statuses as final', () => {
    for (const s of [408, 429, 500, 501, 503, 599]) expect(isTransientStatus(s)).toBe(true);
    for (const s of [400, 401, 403, 404, 409, 413, 422]) expect(isTransientStatus(s)).toBe(false);
  });
  it('knows the network codes of got and of the SOAP client', () => {
    for (const c of ['ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_NETWORK']) {
      expect(isTransientErrorCode(c)).toBe(true);
    }
    expect(isTransientErrorCode('EACCES')).toBe(false);
    expect(isTransientErrorCode(undefined)).toBe(false);
  });
});
