import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import type { HttpFaultOptions } from '../../fixtures/http-faults.js';
import {
  CrmSource,
  crmConfigFromSettings,
  resolveCrmConfig,
  type CrmPaginationStyle,
  type CrmSourceInput,
} from '../../src/connectors/crm-source.js';
import type { FetchWindow, SourcePage } from '../../src/connectors/source.js';
import {
  ConfigError,
  SourceMalformedError,
  SourcePermanentError,
  SourceTransientError,
} from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { validateEnvelope, type Envelope } from '../../src/records/envelope.js';

const TOKEN = 'crm-secret-token-123';
const STYLES: CrmPaginationStyle[] = ['cursor', 'next-url', 'odata', 'link', 'offset'];
const servers: CrmServer[] = [];

afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.close();
});

async function start(options: CrmServerOptions = {}): Promise<CrmServer> {
  const server = await startCrmServer({ token: TOKEN, seed: 11, count: 300, products: 30, ...options });
  servers.push(server);
  return server;
}

function source(server: CrmServer, extra: CrmSourceInput = {}, logs?: string[]): CrmSource {
  const logger = logs ? createLogger('verbose', (s) => logs.push(s)) : undefined;
  return new CrmSource(
    {
      baseUrl: server.url,
      token: TOKEN,
      pagination: server.control.pagination,
      pageSize: 50,
      backoffLimitMs: 20,
      timeoutMs: 2_000,
      ...extra,
    },
    { logger },
  );
}

interface Collected {
  pages: SourcePage[];
  envelopes: Envelope[];
}

async function collect(
  src: CrmSource,
  window: FetchWindow = {},
  resumeFrom?: unknown,
  maxPages = Infinity,
): Promise<Collected> {
  const pages: SourcePage[] = [];
  for await (const page of src.pages(window, resumeFrom)) {
    pages.push(page);
    if (pages.length >= maxPages) break;
  }
  return { pages, envelopes: pages.flatMap((p) => p.envelopes) };
}

function expectedIds(server: CrmServer, window: { sinceMs?: number; untilMs?: number } = {}): string[] {
  return [...server.control.store.records(window)].map((c) => c.id);
}

/** Every expected id is there; repeats only with an identical idempotency key or a newer version. */
function expectAllArrived(envelopes: Envelope[], expected: string[]): void {
  expect(new Set(envelopes.map((e) => e.id))).toEqual(new Set(expected));
  const byId = new Map<string, Envelope[]>();
  for (const e of envelopes) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
  for (const [, versions] of byId) {
    for (let k = 1; k < versions.length; k++) {
      const same = versions[k]!.idempotencyKey === versions[k - 1]!.idempotencyKey;
      expect(same || (versions[k]!.sourceVersion ?? 0) > (versions[k - 1]!.sourceVersion ?? 0)).toBe(true);
    }
  }
}

describe('CrmSource pagination', () => {
  for (const style of STYLES) {
    it(`yields every record exactly once (${style})`, async () => {
      const server = await start({ pagination: style, count: 2345 });
      const src = source(server, { pageSize: 100 });
      const { pages, envelopes } = await collect(src);
      expect(envelopes.map((e) => e.id)).toEqual(expectedIds(server));
      expect(pages).toHaveLength(24);
      expect(pages.at(-1)!.cursor).toBeNull();
      expect(pages.slice(0, -1).every((p) => p.cursor !== null)).toBe(true);
      expect(envelopes.every((e) => validateEnvelope(e).ok)).toBe(true);
      expect(src.stats()).toMatchObject({ requests: 24, retries: 0, pages: 24, records: 2345 });
      expect(server.control.stats().requests).toBe(24);
      const last = [...server.control.store.records()].at(-1)!;
      expect(pages.at(-1)!.highWater).toBe(last.updatedAt);
    });

    it(`resumes from a returned cursor without loss (${style})`, async () => {
      const server = await start({ pagination: style, count: 430 });
      const first = await collect(source(server), {}, undefined, 3);
      const cursor = JSON.parse(JSON.stringify(first.pages.at(-1)!.cursor)) as unknown;
      const rest = await collect(source(server), {}, cursor);
      expect([...first.envelopes, ...rest.envelopes].map((e) => e.id)).toEqual(expectedIds(server));
    });
  }

  it('maps archived/deleted records to delete envelopes and keeps the rest as upserts', async () => {
    const server = await start({ count: 400 });
    const { envelopes } = await collect(source(server));
    const records = new Map([...server.control.store.records()].map((c) => [c.id, c]));
    const deletes = envelopes.filter((e) => e.op === 'delete');
    expect(deletes.length).toBeGreaterThan(0);
    for (const e of envelopes) {
      const c = records.get(e.id)!;
      expect(e.op).toBe(c.archived ? 'delete' : 'upsert');
      expect(e.sourceVersion).toBe(c.version);
      expect(e.sourceUpdatedAt).toBe(c.updatedAt);
      expect(e.data).toEqual(c.archived ? null : c);
    }
  });

  it('fetches only changed and deleted records after the high-water mark', async () => {
    const server = await start({ count: 500 });
    const full = await collect(source(server));
    const highWater = full.pages.at(-1)!.highWater!;
    const before = full.envelopes;
    const mutation = server.control.mutate({ update: ['C0000010', 'C0000300'], delete: ['C0000020'] });

    const again = await collect(source(server), { since: highWater });
    const ids = again.envelopes.map((e) => e.id);
    // since is inclusive: the record at the high-water mark comes again, with an identical key.
    expect(ids).toEqual([before.at(-1)!.id, ...mutation.updated, ...mutation.deleted]);
    expect(again.envelopes[0]!.idempotencyKey).toBe(before.at(-1)!.idempotencyKey);
    const deleted = again.envelopes.find((e) => e.id === 'C0000020')!;
    expect(deleted).toMatchObject({ op: 'delete', data: null });
    expect(again.pages.at(-1)!.highWater).toBe(mutation.updatedAt);

    // A backfill window [since, until) returns exactly its slice.
    const all = [...server.control.store.records()];
    const since = all[100]!.updatedAt;
    const until = all[180]!.updatedAt;
    const windowed = await collect(source(server, { pageSize: 7 }), { since, until });
    expect(windowed.envelopes.map((e) => e.id)).toEqual(
      expectedIds(server, { sinceMs: Date.parse(since), untilMs: Date.parse(until) }),
    );
    expect(windowed.envelopes).toHaveLength(80);
  });

  it('keeps records without an id or a valid modification time as rejects', async () => {
    const server = await start({ count: 120 });
    // Point the id mapping at an optional field: records without it must become rejects, not crashes.
    const src = source(server, { fields: { id: 'phone' } });
    const { pages, envelopes } = await collect(src);
    const rejects = pages.flatMap((p) => p.rejects);
    const withPhone = [...server.control.store.records()].filter((c) => c.phone !== undefined);
    expect(envelopes.length).toBeGreaterThan(0);
    expect(rejects.length).toBe(120 - withPhone.length);
    expect(envelopes.length + rejects.length + src.stats().duplicatesDropped).toBe(120);
    expect(rejects[0]!.reason).toMatch(/no id in "phone"/);
    expect(JSON.parse(rejects[0]!.raw)).toHaveProperty('id');

    const bad = await collect(source(server, { fields: { updatedAt: 'country' } }));
    const badRejects = bad.pages.flatMap((p) => p.rejects);
    expect(bad.envelopes).toHaveLength(0);
    expect(badRejects).toHaveLength(120);
    expect(badRejects[0]!.reason).toMatch(/no valid modification time in "country"/);
  });
});

describe('CrmSource under faults', () => {
  const cases: [string, HttpFaultOptions, CrmSourceInput?][] = [
    ['latency', { latencyMs: 15 }],
    ['5xx every 3rd request', { serverError: { every: 3 } }],
    ['5xx at a seeded rate', { serverError: { rate: 0.3, status: 500 }, seed: 5 }],
    ['hung requests', { hang: { every: 4 } }, { timeoutMs: 250 }],
    ['HTML error pages', { html: { every: 3 } }],
    ['malformed JSON bodies', { malformed: { every: 3 } }],
    ['truncated bodies', { truncated: { every: 3 } }],
    ['records updated while paging', { updateWhilePaging: { every: 2 } }],
    [
      'all at once',
      {
        seed: 3,
        latencyMs: 2,
        serverError: { rate: 0.1 },
        html: { rate: 0.05 },
        malformed: { rate: 0.05 },
        truncated: { rate: 0.05 },
        duplicates: 1,
        updateWhilePaging: { rate: 0.2 },
      },
      { retries: 6 },
    ],
  ];
  for (const [name, faults, extra] of cases) {
    it(`all records still arrive: ${name}`, async () => {
      const server = await start({ count: 300, faults });
      const src = source(server, extra);
      const { envelopes } = await collect(src);
      expectAllArrived(envelopes, expectedIds(server));
      const fired = Object.values(server.control.stats().faultsFired).reduce((a, b) => a + b, 0);
      if (name !== 'latency') expect(fired).toBeGreaterThan(0);
      const failures = Object.entries(server.control.stats().faultsFired)
        .filter(([k]) => k !== 'updateWhilePaging')
        .reduce((a, [, b]) => a + b, 0);
      expect(src.stats().retries).toBe(failures);
      expect(src.stats().requests).toBe(server.control.stats().requests);
    });
  }

  it('drops exact duplicates across page boundaries', async () => {
    const server = await start({ count: 300, faults: { duplicates: 2 } });
    const src = source(server);
    const { envelopes } = await collect(src);
    expect(envelopes.map((e) => e.id)).toEqual(expectedIds(server));
    expect(src.stats().duplicatesDropped).toBeGreaterThan(0);
  });

  it('honours Retry-After: no request before the delay has passed', async () => {
    const server = await start({ count: 120, faults: { rateLimit: { every: 2, times: 2, retryAfter: 1 } } });
    const src = source(server);
    const started = Date.now();
    const { envelopes } = await collect(src);
    expect(envelopes.map((e) => e.id)).toEqual(expectedIds(server));
    const log = server.control.stats().log;
    const limited = log.filter((e) => e.status === 429);
    expect(limited).toHaveLength(2);
    for (const entry of limited) {
      const next = log.find((e) => e.n === entry.n + 1)!;
      expect(next.at - entry.at).toBeGreaterThanOrEqual(995);
    }
    expect(src.stats().retries).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  });

  it('gives up with a transient error when Retry-After exceeds the configured maximum', async () => {
    const server = await start({ faults: { rateLimit: { first: 100, retryAfter: 30 } } });
    const started = Date.now();
    const err = await collect(source(server, { maxRetryAfterMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceTransientError);
    expect((err as Error).message).toMatch(/429/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.control.stats().requests).toBe(1);
  });

  it('reports a page that stays malformed after the pages before it were yielded', async () => {
    const server = await start({ count: 300, faults: { malformed: { from: 3 } } });
    const src = source(server, { retries: 2 });
    const pages: SourcePage[] = [];
    let error: unknown;
    try {
      for await (const page of src.pages({})) pages.push(page);
    } catch (err) {
      error = err;
    }
    expect(pages).toHaveLength(2);
    expect(pages.flatMap((p) => p.envelopes).map((e) => e.id)).toEqual(expectedIds(server).slice(0, 100));
    expect(error).toBeInstanceOf(SourceMalformedError);
    const message = (error as Error).message;
    expect(message).toMatch(/CRM page 3 \(http:\/\/127\.0\.0\.1:\d+\/v1\/customers\?limit=50&after=/);
    expect(message).toMatch(/not valid JSON after 3 attempt/);
    expect(server.control.stats().requests).toBe(2 + 3);
    expect(src.stats().retries).toBe(2);
    // Resuming from the last good page's cursor continues there once the CRM is healthy again.
    server.control.setFaults({});
    const rest = await collect(source(server), {}, pages.at(-1)!.cursor);
    expect([...pages.flatMap((p) => p.envelopes), ...rest.envelopes].map((e) => e.id)).toEqual(
      expectedIds(server),
    );
  });
});

describe('CrmSource permanent failures', () => {
  it('401: stops at once, says which setting to fix and never shows the token', async () => {
    const server = await start();
    const logs: string[] = [];
    const src = new CrmSource(
      { baseUrl: server.url, token: 'wrong-token-value' },
      { logger: createLogger('verbose', (s) => logs.push(s)) },
    );
    const started = Date.now();
    const err = await collect(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourcePermanentError);
    const e = err as SourcePermanentError;
    expect(e.message).toMatch(/refused the token \(401\)/);
    expect(e.hint).toMatch(/--crm-token \/ SYNCCTL_CRM_TOKEN/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(server.control.stats().requests).toBe(1);
    expect(src.stats().retries).toBe(0);
    const everything = JSON.stringify({
      m: e.message,
      h: e.hint,
      d: e.details,
      c: String(e.cause),
      s: e.stack,
      logs,
    });
    expect(everything).not.toContain('wrong-token-value');
  });

  it('403 and 404 are permanent too', async () => {
    const server = await start({ forbiddenTokens: ['read-nothing'] });
    const forbidden = await collect(new CrmSource({ baseUrl: server.url, token: 'read-nothing' })).catch(
      (e: unknown) => e,
    );
    expect(forbidden).toBeInstanceOf(SourcePermanentError);
    expect((forbidden as Error).message).toMatch(/403/);
    const missing = await collect(source(server, { path: '/v2/customers' })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SourcePermanentError);
    expect((missing as SourcePermanentError).hint).toMatch(/--crm-path/);
    expect(server.control.stats().requests).toBe(2);
  });

  it('a wrong records path says which setting to fix', async () => {
    const server = await start({ pagination: 'odata' });
    const err = await collect(source(server, { recordsPath: 'results' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceMalformedError);
    expect((err as Error).message).toMatch(
      /no records array at "results" \(found: @odata.count, value, @odata.nextLink\)/,
    );
    expect((err as SourceMalformedError).hint).toMatch(/--crm-records-path/);
  });

  it('logs retries without the token', async () => {
    const server = await start({ count: 60, faults: { serverError: { first: 1 } } });
    const logs: string[] = [];
    await collect(source(server, {}, logs));
    expect(logs.join('')).toMatch(/CRM retry 1 of http:\/\/127\.0\.0\.1:\d+\/v1\/customers\?limit=50: 503/);
    expect(logs.join('')).not.toContain(TOKEN);
  });
});

describe('CRM configuration', () => {
  it('validates at the edge with field-named errors', () => {
    expect(() => resolveCrmConfig({ token: 't' })).toThrow(ConfigError);
    try {
      resolveCrmConfig({ token: 't' });
    } catch (err) {
      expect((err as ConfigError).message).toMatch(/baseUrl is required/);
      expect((err as ConfigError).hint).toMatch(/--crm-url, SYNCCTL_CRM_URL or profile key crmUrl/);
    }
    expect(() =>
      resolveCrmConfig({ baseUrl: 'http://x', token: 't', pagination: 'pages' as CrmPaginationStyle }),
    ).toThrow(/pagination must be one of cursor, next-url, odata, link, offset/);
    expect(() => resolveCrmConfig({ baseUrl: 'ftp://x', token: 't' })).toThrow(
      /baseUrl must be an http\(s\) URL/,
    );
    expect(() => resolveCrmConfig({ baseUrl: 'http://x', token: 't', pageSize: 0 })).toThrow(
      /pageSize must be an integer ≥ 1/,
    );
    expect(() => resolveCrmConfig({ baseUrl: 'http://x' })).toThrow(/token is required/);
    expect(resolveCrmConfig({ baseUrl: 'http://x', token: 't', pagination: 'odata' })).toMatchObject({
      recordsPath: 'value',
      nextPath: '@odata.nextLink',
    });
  });

  it('reads flags > SYNCCTL_CRM_* environment > profile', () => {
    const settings = {
      env: {
        SYNCCTL_CRM_URL: 'http://env.example',
        SYNCCTL_CRM_TOKEN: 'env-token',
        SYNCCTL_CRM_PAGINATION: 'offset',
        SYNCCTL_CRM_PAGE_SIZE: '25',
        SYNCCTL_CRM_RECORDS_PATH: 'items',
      },
      profile: { crmUrl: 'http://profile.example', crmIdField: 'uuid' },
      profileName: 'default',
      profilePath: '/nowhere/profiles.json',
    };
    const config = crmConfigFromSettings(settings, { crmRecordsPath: 'rows', crmTimeout: '5000' });
    expect(config).toMatchObject({
      baseUrl: 'http://env.example',
      token: 'env-token',
      pagination: 'offset',
      pageSize: 25,
      recordsPath: 'rows',
      pageSizeParam: 'pageSize',
      timeoutMs: 5000,
      fields: { id: 'uuid', updatedAt: 'updatedAt' },
    });
    expect(() =>
      crmConfigFromSettings({ ...settings, env: { ...settings.env, SYNCCTL_CRM_PAGE_SIZE: 'many' } }),
    ).toThrow(/SYNCCTL_CRM_PAGE_SIZE must be an integer ≥ 1, got "many"/);
  });
});
