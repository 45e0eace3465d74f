import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import got, { type Got, type RequestError } from 'got';
import { SinkPermanentError, SinkTransientError, type SyncError } from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../redact.js';
import { DEFAULT_MAX_RESPONSE_BYTES, whereToSet } from '../settings/index.js';
import type { AnalyticsConfig } from './analytics-config.js';
import { gotRetryOptions, isTransientStatus } from './retry-policy.js';
import { gotBodyLimit } from './body-limit.js';
import type { ClientTls } from './tls.js';

/**
 * What batch delivery and CSV upload share: the got client (auth, timeout, the retry policy) and how
 * a final HTTP failure becomes the error that tells the caller what to do.
 */

export function createClient(
  config: AnalyticsConfig,
  logger: Logger,
  agents: { http: HttpAgent; https: HttpsAgent },
  tls: ClientTls,
): Got {
  return got.extend({
    prefixUrl: config.url,
    https: tls.got,
    headers: { authorization: `Bearer ${config.token}`, 'user-agent': 'syncctl' },
    timeout: { request: config.timeoutMs },
    agent: agents,
    throwHttpErrors: true,
    handlers: [
      gotBodyLimit({
        maxBytes: config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
        setting: 'analyticsMaxResponseBytes',
        what: 'an Analytics answer',
      }),
    ],
    // POST is safe to retry here because every request carries an Idempotency-Key.
    retry: gotRetryOptions(
      {
        retries: config.retries,
        backoffMs: config.backoffMs,
        backoffLimitMs: config.backoffLimitMs,
        maxRetryAfterMs: config.maxRetryAfterMs,
      },
      ['POST'],
    ),
    hooks: {
      beforeRetry: [
        (error, retryCount) => {
          const key = error.options.headers['idempotency-key'];
          logger.debug(
            redact(
              `analytics: retry ${retryCount}/${config.retries} of ${String(key)} after ${describeFailure(error)}`,
            ),
          );
        },
      ],
    },
  });
}

/** Maps a final HTTP failure to the error that tells the caller what to do. */
export function httpFailure(
  status: number,
  body: unknown,
  key: string,
  retryAfter: number | undefined,
  attempts: number,
  url: string,
  what: 'batch' | 'upload' = 'batch',
): SyncError {
  const said = serverMessage(body);
  const details = {
    status,
    [what === 'batch' ? 'batchKey' : 'idempotencyKey']: key,
    attempts,
    ...(said ? { response: said } : {}),
  };
  if (status === 401 || status === 403) {
    return new SinkPermanentError(`Analytics refused the credentials (${status})`, {
      hint: `check the token: ${whereToSet('analyticsToken')}`,
      details,
    });
  }
  if (status === 404) {
    return new SinkPermanentError(`Analytics has no ingest endpoint at ${redact(url)} (404)`, {
      hint: `check the base URL, without /v1/…: ${whereToSet('analyticsUrl')}`,
      details,
    });
  }
  if (status === 409 || status === 422) {
    return new SinkPermanentError(
      `Analytics refused ${what} ${key}: its Idempotency-Key was used for different content (${status})`,
      {
        hint: 'batch keys must be derived from the batch content; this is a bug to report',
        details,
      },
    );
  }
  if (isTransientStatus(status)) {
    const waited = retryAfter !== undefined ? `; Retry-After ${Math.round(retryAfter / 1000)} s` : '';
    return new SinkTransientError(
      `Analytics kept failing for ${what} ${key} (${status}${said ? `: ${said}` : ''}) after ${attempts} attempts${waited}`,
      {
        hint: 'rerun later: records already stored are acknowledged, not stored twice',
        details: { ...details, ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}) },
      },
    );
  }
  return new SinkPermanentError(`Analytics refused ${what} ${key} (${status}${said ? `: ${said}` : ''})`, {
    details,
  });
}

/** The server's error text, short and scrubbed (an HTML error page says nothing useful). */
export function serverMessage(body: unknown): string | undefined {
  if (body !== null && typeof body === 'object') {
    const error = (body as { error?: unknown }).error;
    if (typeof error === 'string') return redact(error).slice(0, 200);
  }
  if (typeof body === 'string' && body !== '') {
    const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1];
    return redact(title ?? body.replace(/\s+/g, ' ')).slice(0, 200);
  }
  return undefined;
}

export function describeFailure(error: RequestError): string {
  return error.response ? `HTTP ${error.response.statusCode}` : (error.code ?? error.message);
}

/** got's errors hold the request options, Authorization header included: never pass them on. */
export function sanitized(error: RequestError): Error {
  const copy = new Error(redact(error.message));
  copy.name = error.name;
  (copy as Error & { code?: string }).code = error.code;
  return copy;
}
