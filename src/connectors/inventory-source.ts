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
import * as soap from 'soap';
import {
  ConfigError,
  SourceMalformedError,
  SourcePermanentError,
  SourceTransientError,
  SyncError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../redact.js';
import {
  FETCH_SETTINGS,
  flagOf,
  flagsAndEnv,
  INVENTORY_SETTINGS,
  resolveSettings,
  type SettingsSource,
} from '../settings/index.js';
import type { FetchWindow, SourceConnector, SourcePage } from './source.js';
import {
  backoffDelay,
  isTransientErrorCode,
  isTransientStatus,
  parseRetryAfter,
  retryAfterDelay,
  retryAfterTooLong,
  type RetryPolicy,
} from './retry-policy.js';
import {
  WindowRecords,
  emptyRecordStats,
  readPath,
  type RecordReading,
  type SourceRecordStats,
} from './source-records.js';
import {
  checkConfig,
  configDefaults,
  configFromValues,
  definedOnly,
  settingErrors,
} from './source-settings.js';

export { readPath };

export interface InventoryFieldMap {
  /** Field holding the product id (required on every product). */
  id: string;
  /** Field holding the source modification time (xsd:dateTime / ISO-8601). */
  modifiedAt: string;
  /** Field holding a version number; '' when the service has none. */
  version: string;
  /** Boolean field marking discontinued (deleted) products; '' when none. */
  deleted: string;
}

/** Element names of the listing request, for services that spell them differently. */
export interface InventoryRequestMap {
  pageToken: string;
  pageSize: string;
  /** '' when the service cannot filter by time (then only full fetches make sense). */
  modifiedSince: string;
  modifiedUntil: string;
}

export interface InventorySourceConfig {
  /** URL of the WSDL, e.g. http://inventory.example.com/inventory?wsdl. */
  wsdlUrl: string;
  /** WS-Security UsernameToken (PasswordText); '' sends no security header. */
  user: string;
  password: string;
  /** Overrides the WSDL's soap:address ('' = use the WSDL's). */
  endpoint: string;
  /** The listing operation. */
  operation: string;
  /** Dot path to the products in the operation's result ('products.product'). */
  recordsPath: string;
  /** Dot path to the next page token in the result. */
  nextTokenPath: string;
  request: InventoryRequestMap;
  pageSize: number;
  fields: InventoryFieldMap;
  /** Deadline of every SOAP call and of the WSDL download. */
  timeoutMs: number;
  /** Retries per call for transient failures (so at most retries + 1 attempts). */
  retries: number;
  /** First backoff delay; doubles per retry up to backoffLimitMs, with jitter. */
  backoffBaseMs: number;
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the call fails as transient instead. */
  maxRetryAfterMs: number;
  /** Exact repeats (same id and content) within one run are dropped via an LRU of this many ids; 0 = off. */
  dedupeWindow: number;
}

export type InventorySourceInput = Partial<Omit<InventorySourceConfig, 'fields' | 'request'>> & {
  fields?: Partial<InventoryFieldMap>;
  request?: Partial<InventoryRequestMap>;
};

const DEFAULTS = configDefaults(INVENTORY_SETTINGS) as unknown as InventorySourceConfig;

const fieldError = settingErrors('Inventory', INVENTORY_SETTINGS);

function checkHttpUrl(value: string, field: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fieldError(field, `is not a URL: "${redact(value)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw fieldError(field, 'must be an http(s) URL');
}

/** Validates options at the edge; every message names the setting and how to set it. */
export function resolveInventoryConfig(input: InventorySourceInput): InventorySourceConfig {
  const config = {
    ...DEFAULTS,
    ...definedOnly(input),
    request: { ...DEFAULTS.request, ...definedOnly(input.request) },
    fields: { ...DEFAULTS.fields, ...definedOnly(input.fields) },
  } as InventorySourceConfig;
  checkConfig(config as unknown as Record<string, unknown>, INVENTORY_SETTINGS, fieldError);

  if (!config.wsdlUrl) {
    throw fieldError(
      'wsdlUrl',
      'is required (the Inventory WSDL URL, e.g. http://inventory.example.com/inventory?wsdl)',
    );
  }
  checkHttpUrl(config.wsdlUrl, 'wsdlUrl');
  if (config.endpoint !== '') checkHttpUrl(config.endpoint, 'endpoint');
  if ((config.user === '') !== (config.password === '')) {
    throw fieldError(
      config.user === '' ? 'user' : 'password',
      'is required when the other credential is set',
    );
  }
  return config;
}

/** The Inventory configuration from flags > SYNCCTL_INVENTORY_* environment > profile > defaults, validated. */
export function inventoryConfigFromSettings(
  settings: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): InventorySourceConfig {
  return resolveInventoryConfig(
    configFromValues(INVENTORY_SETTINGS, resolveSettings(INVENTORY_SETTINGS, settings, flags)),
  );
}

export type InventorySourceStats = SourceRecordStats;

export interface InventorySourceOptions {
  logger?: Logger;
  /** Injected for tests; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Injected for tests; defaults to Math.random (backoff jitter). */
  random?: () => number;
}

/** Like readPath, but tells "an empty list" (a present element with nothing in it) from "no such element". */
function readRecords(result: unknown, path: string): unknown[] | undefined {
  let current: unknown = result;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (current === null || current === '') return [];
    if (typeof current !== 'object') return undefined;
    const rest = parts.slice(i).join('.');
    const obj = current as Record<string, unknown>;
    if (Object.hasOwn(obj, rest)) {
      current = obj[rest];
      break;
    }
    const part = parts[i] as string;
    if (!Object.hasOwn(obj, part)) {
      // An element with no children parses as an empty object: the list is simply empty.
      return Object.keys(obj).filter((k) => k !== '$attributes').length === 0 ? [] : undefined;
    }
    current = obj[part];
  }
  if (current === undefined) return undefined;
  if (current === null || current === '') return [];
  // A list with one element parses as that element when the schema does not say "unbounded".
  return Array.isArray(current) ? current : [current];
}

function toIso(value: unknown): string | null {
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : null;
  if (typeof value !== 'string' || value.trim() === '') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** Parsed SOAP values → JSON: dates as ISO text, XML namespace/xsi attributes dropped. */
function toPlain(value: unknown): unknown {
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : null;
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '$attributes' && v !== null && typeof v === 'object') {
        const kept = Object.entries(v).filter(([name]) => !/^(xmlns(:|$)|xsi:)/.test(name));
        if (kept.length > 0) out[key] = Object.fromEntries(kept);
        continue;
      }
      out[key] = toPlain(v);
    }
    return out;
  }
  return value;
}

function isDeletedValue(value: unknown): boolean {
  return value === true || value === 1 || (typeof value === 'string' && /^(true|1|yes)$/i.test(value.trim()));
}

/** What one failed attempt was, and whether another attempt may help. */
interface Failure {
  kind: 'transient' | 'malformed' | 'auth' | 'rejected' | 'not-found';
  message: string;
  /** The server's Retry-After, in ms. */
  retryAfterMs?: number;
}

interface SoapFaultInfo {
  code: string;
  text: string;
  detail: string;
  status: number | undefined;
}

function shorten(text: string, max = 300): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && '$value' in value) return textOf((value as { $value: unknown }).$value);
  return JSON.stringify(value);
}

/** The Fault of a SOAP 1.1 or 1.2 envelope the soap client parsed, if there is one. */
function faultOf(err: unknown): SoapFaultInfo | undefined {
  const e = err as { root?: { Envelope?: { Body?: { Fault?: unknown } } }; response?: { status?: number } };
  const fault = e?.root?.Envelope?.Body?.Fault as Record<string, unknown> | undefined;
  if (!fault || typeof fault !== 'object') return undefined;
  const status = e.response?.status;
  if ('faultcode' in fault || 'faultstring' in fault) {
    return {
      code: textOf(fault.faultcode),
      text: textOf(fault.faultstring),
      detail: textOf(fault.detail),
      status,
    };
  }
  const code = fault.Code as { Value?: unknown; Subcode?: { Value?: unknown } } | undefined;
  const sub = textOf(code?.Subcode?.Value);
  return {
    code: [textOf(code?.Value), sub].filter((s) => s !== '').join('/'),
    text: textOf((fault.Reason as { Text?: unknown } | undefined)?.Text),
    detail: textOf(fault.Detail),
    status,
  };
}

/** Sorts one failed SOAP call (or WSDL download) into what the operator and the retry loop need. */
function classify(err: unknown): Failure {
  if (err instanceof SyncError) {
    if (err instanceof SourceMalformedError) return { kind: 'malformed', message: err.message };
    if (err instanceof SourcePermanentError) return { kind: 'rejected', message: err.message };
    return { kind: 'transient', message: err.message };
  }
  const fault = faultOf(err);
  if (fault) {
    const described = `SOAP Fault ${fault.code}: ${fault.text}${fault.detail ? ` (${shorten(fault.detail, 200)})` : ''}`;
    // SOAP 1.1 "soap:Client" / "SOAP-ENV:Client.Authentication", SOAP 1.2 "soap:Sender/…".
    const clientSide = /(^|:)(Client|Sender)(\b|$)/i.test(fault.code);
    const authLike =
      /FailedAuthentication|InvalidSecurity|FailedCheck|Authenticat|Unauthori[sz]ed/i.test(fault.code) ||
      fault.status === 401 ||
      fault.status === 403 ||
      (clientSide &&
        /authenticat|credential|password|unauthori[sz]ed|security token/i.test(
          `${fault.text} ${fault.detail}`,
        ));
    if (authLike) return { kind: 'auth', message: described };
    if (clientSide) return { kind: 'rejected', message: described };
    return { kind: 'transient', message: described };
  }
  const e = err as {
    Fault?: { faultstring?: unknown; detail?: unknown };
    response?: { status?: number; headers?: Record<string, unknown> };
    code?: unknown;
    message?: unknown;
  };
  const status = e?.response?.status;
  if (typeof status === 'number' && status >= 400) {
    const retryAfterMs = parseRetryAfter(e.response?.headers?.['retry-after']);
    const type = String(e.response?.headers?.['content-type'] ?? 'no content type').split(';')[0];
    const what = `HTTP ${status} (${type})`;
    if (status === 401 || status === 403) return { kind: 'auth', message: what };
    if (status === 404 || status === 410) return { kind: 'not-found', message: what };
    if (isTransientStatus(status)) {
      return { kind: 'transient', message: what, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    return { kind: 'rejected', message: what };
  }
  if (e && typeof e === 'object' && e.Fault && !(err instanceof Error)) {
    // The soap client's XML parser throws a plain {Fault} object for a 2xx body it cannot parse (for
    // an HTTP error status the status above is what matters: a 429 or 502 page is not SOAP anyway).
    return {
      kind: 'malformed',
      message: `the response is not valid XML (${shorten(textOf(e.Fault.detail) || textOf(e.Fault.faultstring), 200)})`,
    };
  }
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') {
    return { kind: 'transient', message: `timed out (${code})` };
  }
  if (isTransientErrorCode(code)) return { kind: 'transient', message: `${code}: ${message}` };
  if (/Cannot parse response|Unexpected|Unclosed|Invalid|non-whitespace|Text data outside/i.test(message)) {
    return {
      kind: 'malformed',
      message: `the response is not a readable SOAP envelope (${shorten(message, 200)})`,
    };
  }
  return { kind: 'transient', message: shorten(message) };
}

type ListProductsAsync = (args: unknown, options?: unknown) => Promise<[unknown, unknown, unknown, unknown]>;

export class InventorySource implements SourceConnector {
  readonly source = 'inventory' as const;
  readonly config: InventorySourceConfig;
  private readonly logger: Logger | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true });
  private client: soap.Client | undefined;
  private opening: Promise<soap.Client> | undefined;
  private readonly counters: InventorySourceStats = emptyRecordStats();

  constructor(input: InventorySourceInput | InventorySourceConfig, options: InventorySourceOptions = {}) {
    this.config = resolveInventoryConfig(input);
    this.logger = options.logger;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
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

  private get policy(): RetryPolicy {
    const { retries, backoffBaseMs, backoffLimitMs, maxRetryAfterMs } = this.config;
    return { retries, backoffMs: backoffBaseMs, backoffLimitMs, maxRetryAfterMs };
  }

  /**
   * Runs one call with bounded retries of transient failures. Returns the value, or throws the last
   * Failure (as `{failure, attempts}`) for the caller to phrase.
   */
  private async withRetries<T>(what: string, call: () => Promise<T>): Promise<T> {
    const attempts = this.config.retries + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
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
    let client: soap.Client;
    try {
      client = await this.withRetries('WSDL download', async () => {
        try {
          return await soap.createClientAsync(config.wsdlUrl, {
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
            },
            ...(config.endpoint === '' ? {} : { endpoint: config.endpoint }),
          });
        } catch (err) {
          throw wsdlFailure(err);
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
        new soap.WSSecurity(config.user, config.password, {
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
    if (since !== undefined || until !== undefined) {
      if (request.modifiedSince === '' || request.modifiedUntil === '') {
        throw new ConfigError(
          `the Inventory service is configured without time filters, so ${flagOf(FETCH_SETTINGS, 'since')}/${flagOf(FETCH_SETTINGS, 'until')} cannot be used`,
          {
            hint: `set ${flagOf(INVENTORY_SETTINGS, 'inventorySinceParam')} and ${flagOf(INVENTORY_SETTINGS, 'inventoryUntilParam')}, or fetch with ${flagOf(FETCH_SETTINGS, 'full')}`,
          },
        );
      }
    }
    if (since !== undefined) args[request.modifiedSince] = since;
    if (until !== undefined) args[request.modifiedUntil] = until;
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
    return this.withRetries(where, async () => {
      this.counters.requests++;
      const [result] = await method.call(client, args, {
        timeout: config.timeoutMs,
        signal: AbortSignal.timeout(config.timeoutMs),
        httpAgent: this.httpAgent,
        httpsAgent: this.httpsAgent,
      });
      if (result === null || typeof result !== 'object') {
        throw new SourceMalformedError(`the ${config.operation} response has no result element`);
      }
      const products = readRecords(result, config.recordsPath);
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

  /** One SOAP product as an envelope's parts, or why it is rejected. */
  private readProduct(raw: unknown): RecordReading {
    const { fields } = this.config;
    const plain = toPlain(raw);
    if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) {
      return {
        reject: {
          reason: 'product is not an XML element with fields',
          raw: JSON.stringify(plain) ?? String(plain),
        },
      };
    }
    const data = plain as Record<string, unknown>;
    const rawId = readPath(data, fields.id);
    if ((typeof rawId !== 'string' || rawId.trim() === '') && typeof rawId !== 'number') {
      return { reject: { reason: `product has no id (field "${fields.id}")`, raw: JSON.stringify(data) } };
    }
    const id = String(rawId);
    const rawModified = readPath(data, fields.modifiedAt);
    const modifiedAt = toIso(rawModified);
    if (modifiedAt === null) {
      return {
        reject: {
          reason: `product ${id} has no valid modification time in "${fields.modifiedAt}" (got ${JSON.stringify(rawModified) ?? 'nothing'})`,
          raw: JSON.stringify(data),
        },
      };
    }
    let version: number | null = null;
    if (fields.version !== '') {
      const v = Number(readPath(data, fields.version));
      if (Number.isInteger(v)) version = v;
    }
    const op = fields.deleted !== '' && isDeletedValue(readPath(data, fields.deleted)) ? 'delete' : 'upsert';
    // A discontinued product keeps its last known fields: Analytics shows it as discontinued.
    return { id, op, data, sourceUpdatedAt: modifiedAt, sourceVersion: version };
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
    const records = new WindowRecords('inventory', this.config.dedupeWindow, this.counters, (raw) =>
      this.readProduct(raw),
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
      const built = records.page(page.products, page.next);
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

/** The last failure of a call after the retry loop gave up (or saw a failure not worth retrying). */
class RetriesExhausted extends Error {
  constructor(
    readonly failure: Failure,
    readonly attempts: number,
  ) {
    super(failure.message);
  }
}

/** WSDL download errors come as plain Errors ("Invalid WSDL URL … Code: 404"); give them a shape classify reads. */
function wsdlFailure(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const status = /Code:\s*(\d{3})/.exec(err.message);
  if (status) {
    const code = Number(status[1]);
    const what = `HTTP ${code} for the WSDL`;
    if (isTransientStatus(code)) return new SourceTransientError(what);
    return new SourcePermanentError(what);
  }
  const code = (err as { code?: unknown }).code;
  if (isTransientErrorCode(code)) return err;
  // Anything else is a document the soap package could not read as a WSDL.
  return new SourcePermanentError(`not a usable WSDL document (${shorten(err.message, 200)})`);
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
