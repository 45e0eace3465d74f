/**
 * Delivery to the Analytics batch-ingest API (fixtures/analytics/README.md has the HTTP contract).
 *
 * Every POST carries an Idempotency-Key, which is what makes retrying a POST safe: a batch that was
 * stored but whose answer was lost is answered again from the server's idempotency table, and each
 * record's own key stops a record from being stored twice across batches. Keys of sub-batches are
 * derived from the caller's batch key and the split, never from time, so a rerun after a crash
 * sends the same keys for the same content.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import got, { HTTPError, RequestError, type Got, type RetryObject } from 'got';
import { InterruptedError, SinkPermanentError, SinkTransientError, type SyncError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../redact.js';
import { ANALYTICS_SETTINGS, resolveSettings, whereToSet, type SettingsSource } from '../settings/index.js';
import {
  checkConfig,
  configDefaults,
  configFromValues,
  definedOnly,
  settingErrors,
} from './source-settings.js';
import type { AnalyticsSink, DeliveryOutcome, SinkFailure, SinkRecord } from './sink.js';
import { RETRY_ERROR_CODES, RETRY_STATUS_CODES } from './http-retry.js';

export interface AnalyticsConfig {
  /** Base URL of the Analytics API, e.g. http://127.0.0.1:8080 (the /v1/… paths are appended). */
  url: string;
  token: string;
  /** Per attempt: a request that takes longer is abandoned and retried. */
  timeoutMs: number;
  /** Retries per request after the first attempt. */
  retries: number;
  /** Records per POST; larger deliveries are split into sub-batches. */
  batchSize: number;
  /** First back-off delay; doubles per retry, with jitter, up to backoffLimitMs. */
  backoffMs: number;
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the delivery fails as temporary. */
  maxRetryAfterMs: number;
}

const DEFAULTS = configDefaults(ANALYTICS_SETTINGS) as Omit<AnalyticsConfig, 'url' | 'token'>;

const settingError = settingErrors('Analytics', ANALYTICS_SETTINGS);

/** Validates options at the edge; every message names the setting and how to set it. */
export function resolveAnalyticsConfig(input: Partial<AnalyticsConfig>): AnalyticsConfig {
  const config = { ...DEFAULTS, ...definedOnly(input) } as AnalyticsConfig;
  checkConfig(config as unknown as Record<string, unknown>, ANALYTICS_SETTINGS, settingError);
  if (!config.url) {
    throw settingError('url', 'is required (`syncctl sandbox env` prints it for the sandbox)');
  }
  let parsed: URL;
  try {
    parsed = new URL(config.url);
  } catch {
    throw settingError('url', `is not a valid URL: "${redact(config.url)}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw settingError('url', `must be http:// or https://, got "${parsed.protocol}"`);
  }
  if (!config.token) throw settingError('token', 'is required (the bearer token of the Analytics API)');
  return { ...config, url: parsed.toString() };
}

/** The Analytics configuration from flags > SYNCCTL_ANALYTICS_* environment > profile > defaults, validated. */
export function analyticsConfigFromSettings(
  settings: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): AnalyticsConfig {
  return resolveAnalyticsConfig(
    configFromValues(ANALYTICS_SETTINGS, resolveSettings(ANALYTICS_SETTINGS, settings, flags)),
  );
}

/** The outcome plus what operators and summaries want to see. */
export interface AnalyticsDeliveryOutcome extends DeliveryOutcome {
  /** Records Analytics acknowledged as already stored (record key seen before). */
  duplicates: number;
  /** HTTP attempts made, retries included. */
  requests: number;
}

interface Item {
  record: SinkRecord;
  /** Position in the caller's list: results go back in this order. */
  index: number;
}

export interface DeliverOptions {
  /** Aborts waits and requests in flight (shutdown): deliver then throws InterruptedError. */
  signal?: AbortSignal;
}

interface Run {
  signal: AbortSignal | undefined;
  delivered: Map<number, SinkRecord>;
  failed: Map<number, SinkFailure>;
  attempts: Map<number, number>;
  retries: number;
  requests: number;
  duplicates: number;
}

type PostResult =
  | { kind: 'ok'; body: unknown }
  | { kind: 'http'; status: number; body: unknown; retryAfterMs: number | undefined }
  | { kind: 'network'; error: RequestError };

/** A POST whose answer stream broke may have been stored: replaying its Idempotency-Key is safe. */
const RETRY_ERROR_CODES_POST = [...RETRY_ERROR_CODES, 'ERR_READING_RESPONSE_STREAM'];

function createClient(
  config: AnalyticsConfig,
  logger: Logger,
  agents: { http: HttpAgent; https: HttpsAgent },
): Got {
  return got.extend({
    prefixUrl: config.url,
    headers: { authorization: `Bearer ${config.token}`, 'user-agent': 'syncctl' },
    timeout: { request: config.timeoutMs },
    agent: agents,
    throwHttpErrors: true,
    retry: {
      limit: config.retries,
      // POST is not retried by default; it is safe here because every request carries an Idempotency-Key.
      methods: ['POST'],
      statusCodes: RETRY_STATUS_CODES,
      errorCodes: RETRY_ERROR_CODES_POST,
      maxRetryAfter: config.maxRetryAfterMs,
      backoffLimit: config.backoffLimitMs,
      calculateDelay: (retry: RetryObject) => retryDelay(retry, config),
    },
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

/** Exponential back-off with "equal jitter"; Retry-After is honoured as a floor. */
export function retryDelay(
  retry: Pick<RetryObject, 'attemptCount' | 'computedValue' | 'retryAfter'>,
  config: Pick<AnalyticsConfig, 'backoffMs' | 'backoffLimitMs'>,
): number {
  // 0 is got's verdict "do not retry" (limit reached, status not retryable, Retry-After too long).
  if (retry.computedValue === 0) return 0;
  if (retry.retryAfter !== undefined && retry.retryAfter > 0) {
    return retry.computedValue + Math.random() * Math.min(retry.computedValue * 0.1, 1_000);
  }
  const ceiling = Math.min(config.backoffMs * 2 ** (retry.attemptCount - 1), config.backoffLimitMs);
  // Never 0 after a positive verdict: got would read 0 as "stop".
  return Math.max(1, ceiling / 2 + (Math.random() * ceiling) / 2);
}

export class HttpAnalyticsSink implements AnalyticsSink {
  private readonly agents = {
    http: new HttpAgent({ keepAlive: true }),
    https: new HttpsAgent({ keepAlive: true }),
  };
  private readonly client: Got;

  constructor(
    readonly config: AnalyticsConfig,
    private readonly logger: Logger = silentLogger,
  ) {
    this.client = createClient(config, logger, this.agents);
  }

  /**
   * Delivers `records` under `batchKey`. Resolves with every record either delivered (stored or
   * acknowledged as a duplicate) or failed permanently; throws SinkPermanentError when Analytics
   * refuses the whole delivery (auth, URL, key reuse) and SinkTransientError when it could not be
   * reached in the retries allowed — in both cases the caller must not commit.
   */
  async deliver(
    records: SinkRecord[],
    batchKey: string,
    options: DeliverOptions = {},
  ): Promise<AnalyticsDeliveryOutcome> {
    const run: Run = {
      signal: options.signal,
      delivered: new Map(),
      failed: new Map(),
      attempts: new Map(),
      retries: 0,
      requests: 0,
      duplicates: 0,
    };
    const items = records.map((record, index) => ({ record, index }));
    const size = this.config.batchSize;
    if (items.length <= size) {
      if (items.length > 0) await this.send(run, items, batchKey);
    } else {
      for (let start = 0; start < items.length; start += size) {
        const chunk = items.slice(start, start + size);
        await this.send(run, chunk, `${batchKey}/${start}-${start + chunk.length - 1}`);
      }
    }
    const byIndex = <T>(m: Map<number, T>) => [...m].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    return {
      delivered: byIndex(run.delivered),
      failed: byIndex(run.failed),
      retries: run.retries,
      duplicates: run.duplicates,
      requests: run.requests,
    };
  }

  private async send(run: Run, items: Item[], key: string): Promise<void> {
    if (run.signal?.aborted) throw interrupted(key);
    const result = await this.post(run, items, key);
    if (result.kind === 'ok') return this.accept(run, items, key, result.body);
    if (run.signal?.aborted) throw interrupted(key);
    if (result.kind === 'network') {
      throw new SinkTransientError(
        redact(
          `Analytics could not be reached for batch ${key} after ${attemptsOf(run, items)} attempts: ${result.error.message}`,
        ),
        {
          cause: sanitized(result.error),
          hint: 'rerun later: records already stored are acknowledged, not stored twice',
          details: { batchKey: key, code: result.error.code },
        },
      );
    }
    const { status, body } = result;
    if (status === 413) {
      if (items.length === 1) {
        const [item] = items as [Item];
        this.fail(
          run,
          item,
          new SinkPermanentError(`Analytics refused record ${item.record.key} as too large (413)`, {
            details: { status, customerId: item.record.customerId },
          }),
        );
        return;
      }
      const half = Math.ceil(items.length / 2);
      const left = items.slice(0, half);
      const right = items.slice(half);
      this.logger.debug(
        `analytics: batch ${key} too large (413), splitting ${items.length} → ${left.length} + ${right.length}`,
      );
      await this.send(run, left, `${key}/${0}-${left.length - 1}`);
      await this.send(run, right, `${key}/${half}-${items.length - 1}`);
      return;
    }
    if (status === 400) {
      const invalid = invalidEntries(body);
      if (invalid.length > 0) return this.splitInvalid(run, items, key, invalid);
    }
    throw httpFailure(status, body, key, result.retryAfterMs, attemptsOf(run, items), this.config.url);
  }

  /** 400 naming the offending records: those fail permanently, the rest go again as a new sub-batch. */
  private async splitInvalid(
    run: Run,
    items: Item[],
    key: string,
    invalid: { index?: number; key?: string | null; reason?: string }[],
  ): Promise<void> {
    const bad = new Map<number, string>();
    for (const entry of invalid) {
      let pos = -1;
      if (typeof entry.key === 'string') pos = items.findIndex((i) => i.record.key === entry.key);
      if (pos < 0 && typeof entry.index === 'number' && entry.index >= 0 && entry.index < items.length) {
        pos = entry.index;
      }
      if (pos >= 0) bad.set(pos, entry.reason ?? 'rejected by Analytics');
    }
    if (bad.size === 0) {
      throw new SinkPermanentError(`Analytics refused batch ${key} (400) naming records that are not in it`, {
        details: { batchKey: key, invalid },
      });
    }
    for (const [pos, reason] of bad) {
      const item = items[pos] as Item;
      this.fail(
        run,
        item,
        new SinkPermanentError(`Analytics rejected record ${item.record.key}: ${redact(reason)}`, {
          details: { status: 400, customerId: item.record.customerId, reason: redact(reason) },
        }),
      );
    }
    const rest = items.filter((_, pos) => !bad.has(pos));
    if (rest.length === 0) return;
    this.logger.debug(`analytics: batch ${key}: ${bad.size} record(s) rejected, re-sending ${rest.length}`);
    await this.send(run, rest, `${key}/ok-${digest(rest.map((i) => i.record.key).join('\n'))}`);
  }

  private accept(run: Run, items: Item[], key: string, body: unknown): void {
    const results = new Map<string, { key?: unknown; status?: unknown; error?: unknown }>();
    const list = (body as { results?: unknown } | null)?.results;
    if (Array.isArray(list)) {
      for (const r of list as { key?: unknown; status?: unknown; error?: unknown }[])
        if (typeof r?.key === 'string') results.set(r.key, r);
    }
    for (const item of items) {
      const result = results.get(item.record.key);
      if (result?.status === 'rejected') {
        const reason = typeof result.error === 'string' ? redact(result.error) : 'rejected by Analytics';
        this.fail(
          run,
          item,
          new SinkPermanentError(`Analytics rejected record ${item.record.key}: ${reason}`, {
            details: { status: 200, customerId: item.record.customerId, reason, batchKey: key },
          }),
        );
      } else {
        // A 200 accepts the batch; per-record results only single out rejects and duplicates.
        if (result?.status === 'duplicate') run.duplicates++;
        run.delivered.set(item.index, item.record);
      }
    }
  }

  private fail(run: Run, item: Item, error: SyncError): void {
    run.failed.set(item.index, { record: item.record, error, attempts: run.attempts.get(item.index) ?? 1 });
  }

  private async post(run: Run, items: Item[], key: string): Promise<PostResult> {
    let attempts = 1;
    try {
      const response = await this.client.post('v1/ingest/batch', {
        json: { records: items.map((i) => i.record) },
        headers: { 'idempotency-key': key },
        responseType: 'json',
        ...(run.signal ? { signal: run.signal } : {}),
      });
      attempts = response.retryCount + 1;
      return { kind: 'ok', body: response.body };
    } catch (err) {
      if (err instanceof RequestError) attempts = (err.request?.retryCount ?? 0) + 1;
      if (err instanceof HTTPError) {
        return {
          kind: 'http',
          status: err.response.statusCode,
          body: err.response.body,
          retryAfterMs: retryAfterMs(err.response.headers['retry-after']),
        };
      }
      if (err instanceof RequestError) return { kind: 'network', error: err };
      throw err;
    } finally {
      run.retries += attempts - 1;
      run.requests += attempts;
      for (const item of items) run.attempts.set(item.index, (run.attempts.get(item.index) ?? 0) + attempts);
    }
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

export function createAnalyticsSink(config: AnalyticsConfig, logger?: Logger): HttpAnalyticsSink {
  return new HttpAnalyticsSink(config, logger);
}

export interface UploadResult {
  uploadId: number;
  rows: number;
  bytes: number;
  columns: string[];
  /** True when Analytics already had this upload (same key and content) and answered from its record. */
  replayed: boolean;
  retries: number;
}

/**
 * Uploads a CSV file (path) or stream to /v1/upload/csv under `idempotencyKey`, with the same retry
 * rules as batches. A stream is first spooled to a temporary file so a retry can send it again
 * without holding it in memory.
 */
export async function uploadCsv(
  config: AnalyticsConfig,
  source: string | Readable,
  idempotencyKey: string,
  logger: Logger = silentLogger,
): Promise<UploadResult> {
  let spoolDir: string | undefined;
  let path: string;
  if (typeof source === 'string') path = source;
  else {
    spoolDir = await mkdtemp(join(tmpdir(), 'syncctl-upload-'));
    path = join(spoolDir, 'upload.csv');
    await pipeline(source, createWriteStream(path));
  }
  const agents = { http: new HttpAgent({ keepAlive: false }), https: new HttpsAgent({ keepAlive: false }) };
  const client = createClient(config, logger, agents);
  let attempts = 1;
  try {
    const { size } = await stat(path);
    const response = await client.post('v1/upload/csv', {
      body: createReadStream(path),
      headers: {
        'idempotency-key': idempotencyKey,
        'content-type': 'text/csv',
        'content-length': String(size),
      },
      responseType: 'json',
      hooks: {
        // The first stream was consumed: each retry needs a fresh one (got checks the body changed).
        beforeRetry: [(error) => void (error.options.body = createReadStream(path))],
      },
    });
    attempts = response.retryCount + 1;
    const body = response.body as Partial<UploadResult>;
    return {
      uploadId: Number(body.uploadId),
      rows: Number(body.rows),
      bytes: Number(body.bytes),
      columns: Array.isArray(body.columns) ? body.columns : [],
      replayed: response.headers['idempotent-replayed'] === 'true',
      retries: attempts - 1,
    };
  } catch (err) {
    if (err instanceof RequestError) attempts = (err.request?.retryCount ?? 0) + 1;
    if (err instanceof HTTPError) {
      throw httpFailure(
        err.response.statusCode,
        err.response.body,
        idempotencyKey,
        retryAfterMs(err.response.headers['retry-after']),
        attempts,
        config.url,
        'upload',
      );
    }
    if (err instanceof RequestError) {
      throw new SinkTransientError(
        redact(
          `Analytics could not be reached for upload ${idempotencyKey} after ${attempts} attempts: ${err.message}`,
        ),
        { cause: sanitized(err), details: { code: err.code } },
      );
    }
    throw err;
  } finally {
    agents.http.destroy();
    agents.https.destroy();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  }
}

/** Maps a final HTTP failure to the error that tells the caller what to do. */
function httpFailure(
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
  if (status === 429 || status === 408 || status >= 500) {
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

function invalidEntries(body: unknown): { index?: number; key?: string | null; reason?: string }[] {
  const list = (body as { invalid?: unknown } | null)?.invalid;
  return Array.isArray(list) ? (list.filter((e) => e !== null && typeof e === 'object') as never[]) : [];
}

/** The server's error text, short and scrubbed (an HTML error page says nothing useful). */
function serverMessage(body: unknown): string | undefined {
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

function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function describeFailure(error: RequestError): string {
  return error.response ? `HTTP ${error.response.statusCode}` : (error.code ?? error.message);
}

/** got's errors hold the request options, Authorization header included: never pass them on. */
function sanitized(error: RequestError): Error {
  const copy = new Error(redact(error.message));
  copy.name = error.name;
  (copy as Error & { code?: string }).code = error.code;
  return copy;
}

function attemptsOf(run: Run, items: Item[]): number {
  return Math.max(...items.map((i) => run.attempts.get(i.index) ?? 1));
}

function interrupted(key: string): InterruptedError {
  return new InterruptedError(`delivery of batch ${key} was interrupted`, {
    hint: 'rerun: the same batch keys are sent again and Analytics stores nothing twice',
    details: { batchKey: key },
  });
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
