/**
 * The Inventory source: a SOAP 1.1 service with a paged listing operation, through the `soap` client
 * built from the service's own WSDL. got does not carry SOAP calls (soap speaks through its own HTTP
 * client), so the retry loop lives here, asking the shared policy (./retry-policy.ts) what is
 * transient and how long to wait: 5xx, 429, timeouts, connection errors, SOAP Server faults and
 * bodies that are not valid XML are retried. Authentication and other Client faults, a broken
 * WSDL and 4xx answers stop at once with a message saying what to fix.
 *
 * One yielded SourcePage per SOAP call; the next call is made only when the caller asks for the next
 * page, so pages never pile up. The page cursor is the service's own next-page token.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type * as soap from 'soap';
import {
  ConfigError,
  SourceMalformedError,
  SourcePermanentError,
  SourceTransientError,
  SyncError,
  TlsError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../redact.js';
import { FETCH_SETTINGS, flagOf, flagsAndEnv, INVENTORY_SETTINGS } from '../settings/index.js';
import { backoffDelay, retryAfterDelay, retryAfterTooLong, type RetryPolicy } from './retry-policy.js';
import { inventoryMapper, loadMappingSpec, soapRecordsAt, type RecordMapper } from '../mapping/index.js';
import {
  resolveInventoryConfig,
  type InventorySourceConfig,
  type InventorySourceInput,
} from './inventory-config.js';
import { RetriesExhausted, classify, shorten, wsdlFailure } from './soap-faults.js';
import { axiosBodyLimit, bodyTooLarge, isAxiosBodyLimit, type BodyLimit } from './body-limit.js';
import { ClientTls } from './tls.js';
import type { FetchWindow, SourceConnector, SourceFilters, SourcePage } from './source.js';
import { WindowRecords, emptyRecordStats, readPath, type SourceRecordStats } from './source-records.js';

export { readPath };
export * from './inventory-config.js';
export { parseRetryAfter } from './retry-policy.js';

export type InventorySourceStats = SourceRecordStats;

export interface InventorySourceOptions {
  logger?: Logger;
  /** Injected for tests; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Injected for tests; defaults to Math.random (backoff jitter). */
  random?: () => number;
  /** Pages carry each raw record with its mapping (see SourcePage.readings). */
  keepReadings?: boolean;
}

type ListProductsAsync = (args: unknown, options?: unknown) => Promise<[unknown, unknown, unknown, unknown]>;

export class InventorySource implements SourceConnector {
  readonly source = 'inventory' as const;
  readonly config: InventorySourceConfig;
  readonly filters: SourceFilters;
  readonly mapper: RecordMapper;
  private readonly logger: Logger | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly keepReadings: boolean;
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private readonly httpsAgent: HttpsAgent;
  private readonly tls: ClientTls;
  private client: soap.Client | undefined;
  private opening: Promise<soap.Client> | undefined;
  private readonly counters: InventorySourceStats = emptyRecordStats();

  constructor(input: InventorySourceInput | InventorySourceConfig, options: InventorySourceOptions = {}) {
    this.config = resolveInventoryConfig(input);
    const { config } = this;
    this.tls = new ClientTls('inventory', config.tls);
    // The SOAP client speaks through axios, not got: the certificates go into its https agent.
    this.httpsAgent = new HttpsAgent({ keepAlive: true, ...this.tls.agent });
    this.filters = { since: config.request.modifiedSince !== '', until: config.request.modifiedUntil !== '' };
    this.mapper = inventoryMapper(
      config.fields,
      loadMappingSpec(
        config.mappingSpec ?? config.mapping,
        'product',
        flagOf(INVENTORY_SETTINGS, 'inventoryMapping'),
      ),
    );
    this.logger = options.logger;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.keepReadings = options.keepReadings ?? false;
  }

  stats(): InventorySourceStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Secrets never reach messages: the generic redaction plus the configured password itself. */
  private scrub(text: string): string {
    let out = redact(text);
    const { password } = this.config;
    if (password.length >= 4) out = out.split(password).join('***');
    return out;
  }

  private get bodyLimit(): BodyLimit {
    return {
      maxBytes: this.config.maxResponseBytes,
      setting: 'inventoryMaxResponseBytes',
      what: 'an Inventory SOAP response',
    };
  }

  private get policy(): RetryPolicy {
    const { retries, backoffBaseMs, backoffLimitMs, maxRetryAfterMs } = this.config;
    return { retries, backoffMs: backoffBaseMs, backoffLimitMs, maxRetryAfterMs };
  }

  /**
   * Runs one call with bounded retries of transient failures. Returns the value, or throws the last
   * Failure (as `{failure, attempts}`) for the caller to phrase.
   */
  private async withRetries<T>(what: string, url: string, call: () => Promise<T>): Promise<T> {
    const attempts = this.config.retries + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        // Cut off for its size: the same call would bring the same body, so it is not retried.
        if (isAxiosBodyLimit(err)) throw bodyTooLarge(this.bodyLimit, `(${what})`);
        const tlsError = err instanceof TlsError ? err : this.tls.explain(err, url, attempt >= attempts);
        if (tlsError) throw tlsError;
        const failure = classify(err);
        failure.message = this.scrub(failure.message);
        const retryable = failure.kind === 'transient' || failure.kind === 'malformed';
        if (!retryable || attempt >= attempts) throw new RetriesExhausted(failure, attempt);
        if (failure.retryAfterMs !== undefined && retryAfterTooLong(failure.retryAfterMs, this.policy)) {
          failure.message += `; the service asked to wait ${Math.ceil(failure.retryAfterMs / 1000)} s, more than ${flagOf(INVENTORY_SETTINGS, 'inventoryMaxRetryAfter')} (${this.config.maxRetryAfterMs} ms)`;
          throw new RetriesExhausted(failure, attempt);
        }
        const delay =
          failure.retryAfterMs === undefined
            ? backoffDelay(attempt, this.policy, this.random)
            : retryAfterDelay(failure.retryAfterMs, this.random);
        this.counters.retries++;
        this.logger?.debug(
          `Inventory ${what}: attempt ${attempt} of ${attempts} failed (${failure.message}); retrying in ${delay} ms`,
        );
        await this.sleep(delay);
      }
    }
  }

  /** Downloads and parses the WSDL (once): a broken one fails here, before any page is fetched. */
  async open(): Promise<soap.Client> {
    if (this.client) return this.client;
    this.opening ??= this.createClient().finally(() => {
      this.opening = undefined;
    });
    this.client = await this.opening;
    return this.client;
  }

  private async createClient(): Promise<soap.Client> {
    const { config } = this;
    const wsdl = this.scrub(config.wsdlUrl);
    const envHint = `check ${flagsAndEnv(INVENTORY_SETTINGS, 'inventoryWsdl')}`;
    // Loaded here, not at start-up: the soap package costs every other command half a second.
    const { createClientAsync, WSSecurity } = await import('soap');
    let client: soap.Client;
    try {
      client = await this.withRetries('WSDL download', config.wsdlUrl, async () => {
        try {
          return await createClientAsync(config.wsdlUrl, {
            // Each run reads the service's current contract; the in-process cache would pin a stale one.
            disableCache: true,
            // Products may carry a field named "attributes"; the soap default would hide it.
            attributesKey: '$attributes',
            handleNilAsNull: true,
            // Values stay exactly as sent: a trailing newline in a description is data.
            preserveWhitespace: true,
            // Dates and decimals stay text: no time-zone drift, no binary rounding of prices.
            customDeserializer: {
              dateTime: (t: string) => t,
              date: (t: string) => t,
              decimal: (t: string) => t,
            },
            wsdl_options: {
              timeout: config.timeoutMs,
              signal: AbortSignal.timeout(config.timeoutMs),
              httpAgent: this.httpAgent,
              httpsAgent: this.httpsAgent,
              ...axiosBodyLimit(this.bodyLimit),
            },
            ...(config.endpoint === '' ? {} : { endpoint: config.endpoint }),
          });
        } catch (err) {
          if (isAxiosBodyLimit(err)) throw err;
          // Certificate failures first: wsdlFailure would call them a broken WSDL.
          throw this.tls.explain(err, config.wsdlUrl, false) ?? wsdlFailure(err);
        }
      });
    } catch (err) {
      if (!(err instanceof RetriesExhausted)) throw err;
      const { failure, attempts } = err;
      if (failure.kind === 'transient') {
        throw new SourceTransientError(
          `cannot reach the Inventory WSDL at ${wsdl} after ${attempts} attempt(s): ${failure.message}`,
          { hint: `check that the Inventory service is up and the URL is right (${envHint}); then rerun` },
        );
      }
      throw new SourcePermanentError(`the Inventory WSDL at ${wsdl} is broken: ${failure.message}`, {
        hint: `point it at the service's WSDL document (${envHint})`,
      });
    }
    const operations = describeOperations(client);
    if (!operations.includes(config.operation)) {
      throw new SourcePermanentError(
        `the Inventory WSDL at ${wsdl} has no operation ${config.operation} (it has: ${operations.join(', ') || 'none'})`,
        {
          hint: `check ${envHint}, or name the listing operation with ${flagOf(INVENTORY_SETTINGS, 'inventoryOperation')}`,
        },
      );
    }
    if (config.user !== '') {
      client.setSecurity(
        new WSSecurity(config.user, config.password, {
          passwordType: 'PasswordText',
          hasTimeStamp: true,
        }),
      );
    }
    return client;
  }

  private requestArgs(window: FetchWindow, token: string | undefined): Record<string, unknown> {
    const { request, pageSize } = this.config;
    // Element order follows the WSDL's sequence, as document/literal services validate it.
    const args: Record<string, unknown> = {};
    if (token !== undefined) args[request.pageToken] = token;
    if (request.pageSize !== '') args[request.pageSize] = pageSize;
    const since = normaliseTime(window.since, 'since');
    const until = normaliseTime(window.until, 'until');
    if (since !== undefined) {
      if (!this.filters.since) {
        throw new ConfigError(
          'the Inventory service is configured without a modified-since filter, so it can only be fetched in full',
          {
            hint: `set ${flagOf(INVENTORY_SETTINGS, 'inventorySinceParam')}, or fetch with ${flagOf(FETCH_SETTINGS, 'full')}`,
          },
        );
      }
      args[request.modifiedSince] = since;
    }
    // Without an until filter the service lists up to now; the high-water mark comes from what was seen.
    if (until !== undefined && this.filters.until) args[request.modifiedUntil] = until;
    return args;
  }

  private async fetchPage(
    client: soap.Client,
    args: Record<string, unknown>,
    where: string,
  ): Promise<{ products: unknown[]; next: string | null }> {
    const { config } = this;
    const method = client[`${config.operation}Async`] as ListProductsAsync | undefined;
    if (typeof method !== 'function') {
      throw new SourcePermanentError(`the Inventory client has no operation ${config.operation}`);
    }
    return this.withRetries(where, config.endpoint || config.wsdlUrl, async () => {
      this.counters.requests++;
      const [result] = await method.call(client, args, {
        timeout: config.timeoutMs,
        signal: AbortSignal.timeout(config.timeoutMs),
        httpAgent: this.httpAgent,
        httpsAgent: this.httpsAgent,
        ...axiosBodyLimit(this.bodyLimit),
      });
      if (result === null || typeof result !== 'object') {
        throw new SourceMalformedError(`the ${config.operation} response has no result element`);
      }
      const products = soapRecordsAt(result, config.recordsPath);
      if (products === undefined) {
        const keys = Object.keys(result).slice(0, 10).join(', ') || 'nothing';
        throw new SourceMalformedError(
          `the ${config.operation} response has no products at "${config.recordsPath}" (found: ${keys})`,
        );
      }
      const rawNext = readPath(result, config.nextTokenPath);
      const next =
        typeof rawNext === 'string' && rawNext !== ''
          ? rawNext
          : typeof rawNext === 'number'
            ? String(rawNext)
            : null;
      return { products, next };
    });
  }

  /**
   * Pages of one window. `resumeFrom` is a cursor an earlier page returned (the service's next page
   * token); undefined or null starts at the first page.
   */
  async *pages(window: FetchWindow, resumeFrom?: unknown): AsyncGenerator<SourcePage> {
    if (resumeFrom !== undefined && resumeFrom !== null && typeof resumeFrom !== 'string') {
      throw new ConfigError(
        `cannot resume: the saved Inventory cursor is not a page token: ${shorten(JSON.stringify(resumeFrom), 100)}`,
        { hint: `rerun with ${flagOf(FETCH_SETTINGS, 'full')} (or restart the backfill)` },
      );
    }
    const client = await this.open();
    const records = new WindowRecords(
      'inventory',
      this.config.dedupeWindow,
      this.counters,
      this.mapper,
      this.keepReadings,
    );
    let token: string | undefined = resumeFrom === undefined || resumeFrom === null ? undefined : resumeFrom;
    let pageNo = 1;
    for (;;) {
      const where = `${this.config.operation} page ${pageNo} (${describeToken(token)})`;
      const args = this.requestArgs(window, token);
      let page: { products: unknown[]; next: string | null };
      try {
        page = await this.fetchPage(client, args, where);
      } catch (err) {
        throw this.explain(err, where, token, pageNo - 1);
      }
      const built = await records.page(page.products, page.next);
      if (page.next !== null && page.next === token) {
        throw new SourceMalformedError(
          `the Inventory service returned the same page token again on ${where}: paging would never end`,
          {
            hint: 'report it to the Inventory team; the pages before it are kept',
            details: { pageToken: token },
          },
        );
      }
      yield built;
      if (page.next === null) return;
      token = page.next;
      pageNo++;
    }
  }

  /** Turns the last failure of a page into the error an operator can act on. */
  private explain(err: unknown, where: string, token: string | undefined, pagesDone: number): SyncError {
    if (!(err instanceof RetriesExhausted)) {
      if (err instanceof SyncError) return err;
      return new SourceTransientError(this.scrub(`Inventory ${where}: ${String(err)}`));
    }
    const { failure, attempts } = err;
    const after = pagesDone > 0 ? ` after ${pagesDone} page(s) were fetched` : '';
    const details = { pageToken: token ?? null, page: pagesDone + 1, pagesFetched: pagesDone, attempts };
    const resumeHint = `a rerun resumes at ${describeToken(token)}`;
    switch (failure.kind) {
      case 'auth':
        return new SourcePermanentError(
          `the Inventory service rejected the credentials on ${where}: ${failure.message}`,
          {
            hint: `check ${flagsAndEnv(INVENTORY_SETTINGS, 'inventoryUser', 'inventoryPassword')}`,
            details,
          },
        );
      case 'not-found':
        return new SourcePermanentError(`the Inventory endpoint answered ${failure.message} on ${where}`, {
          hint: `check the WSDL's soap:address, or set ${flagsAndEnv(INVENTORY_SETTINGS, 'inventoryEndpoint')}`,
          details,
        });
      case 'rejected':
        return new SourcePermanentError(`the Inventory service rejected ${where}: ${failure.message}`, {
          hint:
            token === undefined
              ? `check ${flagOf(INVENTORY_SETTINGS, 'inventoryPageSize')} and the request element names (--inventory-*-param)`
              : `the saved page token may no longer be valid: rerun with ${flagOf(FETCH_SETTINGS, 'full')}, or restart the backfill`,
          details,
        });
      case 'malformed':
        return new SourceMalformedError(
          `the Inventory service sent an unreadable answer to ${where}${after} (${attempts} attempt(s)): ${failure.message}`,
          { hint: `the pages before it are kept; ${resumeHint}`, details },
        );
      case 'transient':
        return new SourceTransientError(
          `the Inventory service kept failing on ${where}${after} (${attempts} attempt(s)): ${failure.message}`,
          {
            hint: `try again later; ${resumeHint}`,
            details,
          },
        );
    }
  }
}

function describeOperations(client: soap.Client): string[] {
  const out = new Set<string>();
  const services = client.describe() as Record<string, Record<string, Record<string, unknown>>>;
  for (const ports of Object.values(services ?? {})) {
    for (const operations of Object.values(ports ?? {}))
      for (const name of Object.keys(operations ?? {})) out.add(name);
  }
  return [...out];
}

function describeToken(token: string | undefined): string {
  if (token === undefined) return 'first page';
  return `page token "${token.length > 80 ? `${token.slice(0, 80)}…` : token}"`;
}

function normaliseTime(value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new ConfigError(`--${name} must be an ISO-8601 date-time, got "${value}"`);
  return new Date(ms).toISOString();
}

/** A connector whose WSDL is already loaded: a broken or unreachable one fails here, before any output. */
export async function openInventorySource(
  input: InventorySourceInput | InventorySourceConfig,
  options?: InventorySourceOptions,
): Promise<InventorySource> {
  const source = new InventorySource(input, options);
  try {
    await source.open();
  } catch (err) {
    await source.close();
    throw err;
  }
  return source;
}
