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
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HTTPError, RequestError, type Got } from 'got';
import { InterruptedError, SinkPermanentError, SinkTransientError, type SyncError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../redact.js';
import type { AnalyticsConfig } from './analytics-config.js';
import { createClient, httpFailure, sanitized } from './analytics-http.js';
import { ClientTls } from './tls.js';
import type { AnalyticsSink, DeliveryOutcome, SinkFailure, SinkRecord } from './sink.js';
import { parseRetryAfter } from './retry-policy.js';

// The sink's public surface stays importable from here for callers that predate the split.
export {
  analyticsConfigFromSettings,
  resolveAnalyticsConfig,
  type AnalyticsConfig,
} from './analytics-config.js';
export { uploadCsv, type UploadResult } from './analytics-upload.js';

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

export class HttpAnalyticsSink implements AnalyticsSink {
  private readonly agents = {
    http: new HttpAgent({ keepAlive: true }),
    https: new HttpsAgent({ keepAlive: true }),
  };
  private readonly client: Got;
  private readonly tls: ClientTls;

  constructor(
    readonly config: AnalyticsConfig,
    private readonly logger: Logger = silentLogger,
  ) {
    this.tls = new ClientTls('analytics', config.tls);
    this.client = createClient(config, logger, this.agents, this.tls);
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
      const tlsError = this.tls.explain(result.error, this.config.url, true);
      if (tlsError) throw tlsError;
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
          retryAfterMs: parseRetryAfter(err.response.headers['retry-after']),
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

function invalidEntries(body: unknown): { index?: number; key?: string | null; reason?: string }[] {
  const list = (body as { invalid?: unknown } | null)?.invalid;
  return Array.isArray(list) ? (list.filter((e) => e !== null && typeof e === 'object') as never[]) : [];
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
