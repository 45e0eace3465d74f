/**
 * The CRM source: any paginated REST/JSON API, by configuration. Paging is got's pagination API
 * (one yielded item per HTTP page, so pages keep their cursor and backpressure holds: the next page
 * is requested only when the caller asks for it); retries are got's, driven by the shared policy of
 * ./retry-policy.ts (transient failures only, unparseable bodies included, Retry-After honoured).
 */
import got, { HTTPError, ParseError, RequestError, parseLinkHeader, type Got, type Response } from 'got';
import {
  ConfigError,
  LimitExceededError,
  SourceMalformedError,
  SourcePermanentError,
  SourceTransientError,
  type SyncError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../redact.js';
import { CRM_SETTINGS, FETCH_SETTINGS, flagOf, flagsAndEnv } from '../settings/index.js';
import { crmMapper, loadMappingSpec, type RecordMapper } from '../mapping/index.js';
import type { FetchWindow, SourceConnector, SourceFilters, SourcePage } from './source.js';
import { WindowRecords, emptyRecordStats, readPath, type SourceRecordStats } from './source-records.js';
import { gotRetryOptions, isTransientStatus } from './retry-policy.js';
import { gotBodyLimit } from './body-limit.js';
import { ClientTls } from './tls.js';
import {
  resolveCrmConfig,
  type CrmPaginationStyle,
  type CrmSourceConfig,
  type CrmSourceInput,
} from './crm-config.js';

export { readPath };

export {
  CRM_PAGINATION_STYLES,
  crmConfigFromSettings,
  resolveCrmConfig,
  type CrmFieldMap,
  type CrmPaginationStyle,
  type CrmSourceConfig,
  type CrmSourceInput,
} from './crm-config.js';

/** Where to continue after a page: JSON-serialisable, stored in checkpoints. */
export type CrmCursor =
  | { style: CrmPaginationStyle; kind: 'after'; after: string }
  | { style: CrmPaginationStyle; kind: 'url'; url: string }
  | { style: CrmPaginationStyle; kind: 'page'; page: number };

export type CrmSourceStats = SourceRecordStats;

/** One HTTP page as got.paginate yields it. */
interface FetchedPage {
  url: string;
  records: unknown[];
  next: CrmCursor | null;
}

function describeStatus(response: Response | undefined): string {
  if (!response) return 'no response';
  const type = String(response.headers['content-type'] ?? '').split(';')[0] || 'no content type';
  return `${response.statusCode} ${response.statusMessage ?? ''}`.trim() + ` (${type})`;
}

export interface CrmSourceOptions {
  logger?: Logger;
  /** Pages carry each raw record with its mapping (see SourcePage.readings). */
  keepReadings?: boolean;
}

export class CrmSource implements SourceConnector {
  readonly source = 'crm' as const;
  readonly config: CrmSourceConfig;
  readonly filters: SourceFilters;
  readonly mapper: RecordMapper;
  private readonly http: Got;
  private readonly tls: ClientTls;
  private readonly origin: string;
  private readonly logger: Logger | undefined;
  private readonly keepReadings: boolean;
  private readonly counters: CrmSourceStats = emptyRecordStats();

  constructor(input: CrmSourceInput | CrmSourceConfig, options: CrmSourceOptions = {}) {
    this.config = resolveCrmConfig(input);
    this.logger = options.logger;
    this.keepReadings = options.keepReadings ?? false;
    this.origin = new URL(this.config.baseUrl).origin;
    const { config } = this;
    this.filters =
      config.filterQuery !== ''
        ? { since: true, until: config.filterQuery.includes('{until}') }
        : { since: config.sinceParam !== '', until: config.untilParam !== '' };
    this.mapper = crmMapper(config.fields, {
      ...config.presetMapping,
      ...loadMappingSpec(
        config.mappingSpec ?? config.mapping,
        'customer',
        flagOf(CRM_SETTINGS, 'crmMapping'),
      ),
    });
    this.tls = new ClientTls('crm', config.tls);
    this.http = got.extend({
      headers: { authorization: `Bearer ${config.token}`, accept: 'application/json' },
      https: this.tls.got,
      responseType: 'json',
      timeout: { request: config.timeoutMs },
      handlers: [
        gotBodyLimit({
          maxBytes: config.maxResponseBytes,
          setting: 'crmMaxResponseBytes',
          what: 'a CRM page',
        }),
      ],
      // got's own base delay (1 s): the CRM settings bound only the cap and the Retry-After.
      retry: gotRetryOptions(
        {
          retries: config.retries,
          backoffMs: 1_000,
          backoffLimitMs: config.backoffLimitMs,
          maxRetryAfterMs: config.maxRetryAfterMs,
        },
        ['GET'],
      ),
      hooks: {
        beforeRequest: [
          () => {
            this.counters.requests++;
          },
        ],
        beforeRetry: [
          (error, retryCount) => {
            this.counters.retries++;
            const url = error.options?.url ? String(error.options.url) : '';
            const why = error.response ? describeStatus(error.response) : (error.code ?? error.message);
            this.logger?.debug(redact(`CRM retry ${retryCount} of ${url}: ${why}`));
          },
        ],
      },
    });
  }

  stats(): CrmSourceStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    // got keeps no connections of its own beyond the global agent; nothing to release.
  }

  /** URL of the first page of a window, or of the page a cursor points at. */
  private startUrl(window: FetchWindow, resumeFrom?: unknown): URL {
    const { config } = this;
    if (resumeFrom !== undefined && resumeFrom !== null) {
      const cursor = resumeFrom as Partial<CrmCursor>;
      if (typeof cursor !== 'object' || cursor.style !== config.pagination) {
        throw new ConfigError(
          `cannot resume: the saved CRM cursor was made with pagination "${String(cursor?.style)}", the CRM is now configured as "${config.pagination}"`,
          {
            hint: `rerun with ${flagOf(FETCH_SETTINGS, 'full')} (or a fresh backfill) after changing the pagination style`,
          },
        );
      }
      if (cursor.kind === 'url' && typeof cursor.url === 'string')
        return this.sameOrigin(new URL(cursor.url, config.baseUrl), cursor.url);
      const url = this.firstUrl(window);
      if (cursor.kind === 'after' && typeof cursor.after === 'string')
        url.searchParams.set(config.cursorParam, cursor.after);
      else if (cursor.kind === 'page' && Number.isInteger(cursor.page))
        url.searchParams.set(config.pageParam, String(cursor.page));
      else
        throw new ConfigError(
          `cannot resume: the saved CRM cursor is not one this connector wrote: ${JSON.stringify(resumeFrom)}`,
        );
      return url;
    }
    return this.firstUrl(window);
  }

  private firstUrl(window: FetchWindow): URL {
    const { config } = this;
    const url = new URL(
      config.path.replace(/^\/?/, ''),
      config.baseUrl.endsWith('/') ? config.baseUrl : `${config.baseUrl}/`,
    );
    if (config.pageSizeParam !== '') url.searchParams.set(config.pageSizeParam, String(config.pageSize));
    if (window.since) {
      if (!this.filters.since) {
        throw new ConfigError(
          'the CRM is configured without a modified-since filter, so it can only be fetched in full',
          {
            hint: `set ${flagOf(CRM_SETTINGS, 'crmSinceParam')} or ${flagOf(CRM_SETTINGS, 'crmFilterQuery')}, or fetch with ${flagOf(FETCH_SETTINGS, 'full')}`,
          },
        );
      }
      if (config.filterQuery !== '') this.setFilterQuery(url, window.since, window.until);
      else url.searchParams.set(config.sinceParam, window.since);
    }
    // Without an until filter the CRM lists up to now; the high-water mark comes from what was seen.
    if (window.until && this.filters.until && config.filterQuery === '')
      url.searchParams.set(config.untilParam, window.until);
    if (config.pagination === 'offset') url.searchParams.set(config.pageParam, String(config.firstPage));
    return url;
  }

  /**
   * Fills the template's placeholders per parameter, after parsing it, so an operator may write it
   * encoded or not and a timestamp never needs escaping by hand.
   */
  private setFilterQuery(url: URL, since: string, until: string | undefined): void {
    for (const [name, template] of new URLSearchParams(this.config.filterQuery)) {
      url.searchParams.set(
        name,
        template.replaceAll('{since}', since).replaceAll('{until}', until ?? new Date().toISOString()),
      );
    }
  }

  /** Next links carry the token on the next request, so they must stay on the CRM's origin. */
  private sameOrigin(url: URL, raw: string): URL {
    if (url.origin !== this.origin) {
      throw new SourcePermanentError(
        `the CRM's next-page link points to another origin (${url.origin}), refusing to send the token there: ${redact(raw)}`,
        {
          hint: `check ${flagOf(CRM_SETTINGS, 'crmUrl')} (${this.origin}) against the URLs the CRM returns`,
        },
      );
    }
    return url;
  }

  /** Reads records and the next-page position from one response. */
  private parsePage(response: Response<unknown>, pageNo: number): FetchedPage {
    const { config } = this;
    const url = response.url;
    const body = response.body;
    const records = readPath(body, config.recordsPath);
    if (!Array.isArray(records)) {
      const keys =
        body !== null && typeof body === 'object' ? Object.keys(body).slice(0, 10).join(', ') : typeof body;
      throw new SourceMalformedError(
        `CRM page ${pageNo} (${redact(url)}) has no records array at "${config.recordsPath || '(body)'}" (found: ${keys})`,
        {
          hint: `set --crm-records-path to the path of the records array (now "${config.recordsPath}")`,
          details: { url: redact(url), page: pageNo },
        },
      );
    }
    const style = config.pagination;
    let next: CrmCursor | null = null;
    switch (style) {
      case 'cursor': {
        const after = readPath(body, config.nextPath);
        if (typeof after === 'string' && after !== '') next = { style, kind: 'after', after };
        else if (typeof after === 'number') next = { style, kind: 'after', after: String(after) };
        break;
      }
      case 'next-url':
      case 'odata': {
        const link = readPath(body, config.nextPath);
        if (typeof link === 'string' && link !== '') {
          next = { style, kind: 'url', url: this.sameOrigin(new URL(link, url), link).href };
        }
        break;
      }
      case 'link': {
        const header = response.headers.link;
        const text = Array.isArray(header) ? header.join(', ') : header;
        if (text) {
          const rel = parseLinkHeader(text).find((l) =>
            l.parameters.rel?.replace(/"/g, '').split(/\s+/).includes('next'),
          );
          if (rel)
            next = {
              style,
              kind: 'url',
              url: this.sameOrigin(new URL(rel.reference, url), rel.reference).href,
            };
        }
        break;
      }
      case 'offset': {
        const current = Number(new URL(url).searchParams.get(config.pageParam) ?? config.firstPage);
        const total = config.totalPath === '' ? undefined : Number(readPath(body, config.totalPath));
        const seenThrough = (current - config.firstPage + 1) * config.pageSize;
        const more =
          records.length > 0 &&
          (total !== undefined && Number.isFinite(total)
            ? seenThrough < total
            : records.length >= config.pageSize);
        if (more) next = { style, kind: 'page', page: current + 1 };
        break;
      }
    }
    return { url, records, next };
  }

  private nextUrl(current: string, next: CrmCursor): URL {
    if (next.kind === 'url') return new URL(next.url);
    const url = new URL(current);
    if (next.kind === 'after') url.searchParams.set(this.config.cursorParam, next.after);
    else url.searchParams.set(this.config.pageParam, String(next.page));
    return url;
  }

  /** Turns what got threw into the error an operator can act on. */
  private explain(err: unknown, url: string, pageNo: number, pagesDone: number): SyncError {
    const where = `CRM page ${pageNo} (${redact(url)})`;
    const after = pagesDone > 0 ? ` after ${pagesDone} page(s) were fetched` : '';
    const details = { url: redact(url), page: pageNo, pagesFetched: pagesDone };
    const cause = new Error(redact(err instanceof Error ? err.message : String(err)));
    // got has spent its retries by now.
    const tlsError = this.tls.explain(err, url, true);
    if (tlsError) return tlsError;
    if (err instanceof HTTPError) {
      const status = err.response.statusCode;
      const what = describeStatus(err.response);
      if (status === 401) {
        return new SourcePermanentError(`the CRM refused the token (401) for ${where}`, {
          hint: `check ${flagsAndEnv(CRM_SETTINGS, 'crmToken')}`,
          details,
          cause,
        });
      }
      if (status === 403) {
        return new SourcePermanentError(`the CRM token may not read customers (403) for ${where}`, {
          hint: `use a token with read access to customers (${flagsAndEnv(CRM_SETTINGS, 'crmToken')})`,
          details,
          cause,
        });
      }
      if (status === 404) {
        return new SourcePermanentError(`the CRM has no such resource (404): ${where}`, {
          hint: `check ${flagsAndEnv(CRM_SETTINGS, 'crmUrl', 'crmPath')}`,
          details,
          cause,
        });
      }
      if (isTransientStatus(status)) {
        const retryAfter = err.response.headers['retry-after'];
        const tail =
          status === 429 && retryAfter
            ? ` (Retry-After ${retryAfter} s; more than ${flagOf(CRM_SETTINGS, 'crmMaxRetryAfter')} waits are not made)`
            : '';
        return new SourceTransientError(`the CRM kept failing with ${what} on ${where}${after}${tail}`, {
          hint: 'try again later; a rerun resumes after the last durable page',
          details,
          cause,
        });
      }
      return new SourcePermanentError(`the CRM rejected the request with ${what}: ${where}`, {
        hint: `check the CRM settings (${(['crmPath', 'crmPageSizeParam', 'crmSinceParam'] as const).map((k) => flagOf(CRM_SETTINGS, k)).join(', ')}, …)`,
        details,
        cause,
      });
    }
    if (err instanceof ParseError) {
      return new SourceMalformedError(
        `${where} is not valid JSON after ${this.config.retries + 1} attempt(s)${after}: ${describeStatus(err.response)}: ${cause.message}`,
        {
          hint: 'the CRM sent an unreadable page; the pages before it are kept — rerun to continue from here',
          details,
          cause,
        },
      );
    }
    if (err instanceof RequestError) {
      return new SourceTransientError(
        `cannot fetch ${where}${after}: ${err.code ?? ''} ${cause.message}`.replace(/\s+/g, ' '),
        {
          hint: `check that the CRM is reachable (${flagOf(CRM_SETTINGS, 'crmUrl')}); a rerun resumes after the last durable page`,
          details,
          cause,
        },
      );
    }
    if (
      err instanceof LimitExceededError ||
      err instanceof SourceMalformedError ||
      err instanceof SourcePermanentError ||
      err instanceof ConfigError
    )
      return err;
    return new SourceTransientError(`${where}: ${cause.message}`, { details, cause });
  }

  async *pages(window: FetchWindow, resumeFrom?: unknown): AsyncGenerator<SourcePage> {
    const start = this.startUrl(window, resumeFrom);
    const records = new WindowRecords(
      'crm',
      this.config.dedupeWindow,
      this.counters,
      this.mapper,
      this.keepReadings,
    );
    let pageNo = 1;
    let pagesDone = 0;
    let currentUrl = start.href;
    const iterator = this.http.paginate<FetchedPage, unknown>(start, {
      pagination: {
        // Each HTTP page becomes one item, so it keeps its own resume cursor.
        transform: (response) => [this.parsePage(response, pageNo)],
        paginate: ({ currentItems }) => {
          const page = currentItems[0];
          if (!page?.next) return false;
          const url = this.nextUrl(page.url, page.next);
          currentUrl = url.href;
          pageNo++;
          return { url };
        },
        shouldContinue: () => true,
        countLimit: Number.POSITIVE_INFINITY,
        requestLimit: Number.MAX_SAFE_INTEGER,
        backoff: 0,
        stackAllItems: false,
      },
    });
    try {
      for await (const page of iterator) {
        const built = await records.page(page.records, page.next);
        pagesDone++;
        yield built;
      }
    } catch (err) {
      throw this.explain(err, currentUrl, pageNo, pagesDone);
    }
  }
}

export function createCrmSource(
  input: CrmSourceInput | CrmSourceConfig,
  options?: CrmSourceOptions,
): CrmSource {
  return new CrmSource(input, options);
}
