import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedProducts, type Product } from '../../fixtures/data/products.js';
import {
  startInventoryServer,
  type InventoryFaultOptions,
  type InventoryServer,
  type InventoryServerOptions,
} from '../../fixtures/inventory/server.js';
import type { InventorySource } from '../../src/connectors/inventory-source.js';
import {
  inventoryConfigFromSettings,
  openInventorySource,
  type InventorySourceInput,
} from '../../src/connectors/inventory-source.js';
import type { FetchWindow, SourcePage } from '../../src/connectors/source.js';
import {
  ConfigError,
  SourceMalformedError,
  SourcePermanentError,
  SourceTransientError,
  type SyncError,
} from '../../src/errors.js';
import { validateEnvelope, type Envelope } from '../../src/records/envelope.js';
import type { SettingsSource } from '../../src/settings/index.js';

const USER = 'inventory-reader';
const PASSWORD = 'S3cret-inventory-pass';
const SEED = 21;
const closers: { close(): Promise<void> }[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.close();
});

async function start(options: InventoryServerOptions = {}): Promise<InventoryServer> {
  const server = await startInventoryServer({
    user: USER,
    password: PASSWORD,
    seed: SEED,
    count: 60,
    ...options,
  });
  closers.push(server);
  return server;
}

async function connect(server: InventoryServer, input: InventorySourceInput = {}): Promise<InventorySource> {
  const source = await openInventorySource({
    wsdlUrl: server.wsdlUrl,
    user: USER,
    password: PASSWORD,
    pageSize: 10,
    timeoutMs: 2000,
    backoffBaseMs: 5,
    backoffLimitMs: 50,
    ...input,
  });
  closers.push(source);
  return source;
}

async function collect(
  source: InventorySource,
  window: FetchWindow = {},
  resumeFrom?: unknown,
): Promise<SourcePage[]> {
  const pages: SourcePage[] = [];
  for await (const page of source.pages(window, resumeFrom)) pages.push(page);
  return pages;
}

function expected(count: number): Product[] {
  return [...expectedProducts({ seed: SEED, count })];
}

/** The last envelope per id, in arrival order. */
function latest(pages: SourcePage[]): Map<string, Envelope> {
  const out = new Map<string, Envelope>();
  for (const page of pages) for (const e of page.envelopes) out.set(e.id, e);
  return out;
}

function settings(env: Record<string, string>): SettingsSource {
  return { env, profile: {}, profileName: 'default', profilePath: '/nowhere/profiles.json' };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('inventory source configuration', () => {
  it('reads flags over SYNCCTL_INVENTORY_* over defaults, with a field mapping', () => {
    const config = inventoryConfigFromSettings(
      settings({
        SYNCCTL_INVENTORY_WSDL: 'http://inv.example/inventory?wsdl',
        SYNCCTL_INVENTORY_USER: 'env-user',
        SYNCCTL_INVENTORY_PASSWORD: 'env-pass',
        SYNCCTL_INVENTORY_PAGE_SIZE: '250',
        SYNCCTL_INVENTORY_TIMEOUT_MS: '1500',
        SYNCCTL_INVENTORY_DELETED_FIELD: 'archived',
      }),
      { inventoryUser: 'flag-user', inventoryPageSize: 50 },
    );
    expect(config).toMatchObject({
      wsdlUrl: 'http://inv.example/inventory?wsdl',
      user: 'flag-user',
      password: 'env-pass',
      pageSize: 50,
      timeoutMs: 1500,
      operation: 'ListProducts',
      fields: { id: 'id', modifiedAt: 'modifiedAt', version: 'version', deleted: 'archived' },
    });
  });

  it('says which setting to fix', () => {
    expect(() => inventoryConfigFromSettings(settings({}))).toThrow(ConfigError);
    expect(() => inventoryConfigFromSettings(settings({}))).toThrow(/wsdlUrl is required/);
    try {
      inventoryConfigFromSettings(
        settings({ SYNCCTL_INVENTORY_WSDL: 'http://x/?wsdl', SYNCCTL_INVENTORY_PAGE_SIZE: 'lots' }),
      );
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).message).toMatch(
        /SYNCCTL_INVENTORY_PAGE_SIZE must be an integer ≥ 1, got "lots"/,
      );
    }
    expect(() =>
      inventoryConfigFromSettings(
        settings({ SYNCCTL_INVENTORY_WSDL: 'http://x/?wsdl', SYNCCTL_INVENTORY_USER: 'u' }),
      ),
    ).toThrow(/password is required/);
    expect(() => inventoryConfigFromSettings(settings({ SYNCCTL_INVENTORY_WSDL: 'ftp://x' }))).toThrow(
      /http\(s\)/,
    );
  });
});

describe('inventory source against the SOAP fixture', () => {
  it('yields every product exactly once as valid envelopes, discontinued ones as deletes', async () => {
    const server = await start({ count: 137 });
    const source = await connect(server, { pageSize: 20 });
    const pages = await collect(source);
    expect(pages.map((p) => p.envelopes.length)).toEqual([20, 20, 20, 20, 20, 20, 17]);
    const envelopes = pages.flatMap((p) => p.envelopes);
    const want = expected(137);
    expect(envelopes.map((e) => e.id)).toEqual(want.map((p) => p.id));
    for (const [i, e] of envelopes.entries()) {
      const p = want[i]!;
      expect(validateEnvelope(JSON.parse(JSON.stringify(e)))).toMatchObject({ ok: true });
      expect(e).toMatchObject({
        source: 'inventory',
        entity: 'product',
        op: p.discontinued ? 'delete' : 'upsert',
        sourceUpdatedAt: p.modifiedAt,
        sourceVersion: p.version,
      });
      // The data is the product as the service holds it: nulls, absent optional fields, exact decimals.
      expect(e.data).toEqual(JSON.parse(JSON.stringify(p)));
    }
    expect(envelopes.some((e) => e.op === 'delete')).toBe(true);
    expect(pages.at(-1)!.cursor).toBeNull();
    expect(pages.slice(0, -1).every((p) => typeof p.cursor === 'string')).toBe(true);
    expect(pages.at(-1)!.highWater).toBe(want.at(-1)!.modifiedAt);
    expect(source.stats()).toMatchObject({ pages: 7, requests: 7, retries: 0, records: 137, rejects: 0 });

    // Re-fetching unchanged data yields identical idempotency keys.
    const again = (await collect(source)).flatMap((p) => p.envelopes);
    expect(again.map((e) => e.idempotencyKey)).toEqual(envelopes.map((e) => e.idempotencyKey));
  });

  it('resumes from a page token a previous run returned', async () => {
    const server = await start({ count: 45 });
    const first = await connect(server);
    const seen: string[] = [];
    let cursor: unknown;
    for await (const page of first.pages({})) {
      seen.push(...page.envelopes.map((e) => e.id));
      cursor = page.cursor;
      if (seen.length >= 20) break;
    }
    expect(typeof cursor).toBe('string');
    const second = await connect(server);
    const rest = (await collect(second, {}, cursor)).flatMap((p) => p.envelopes.map((e) => e.id));
    expect([...seen, ...rest]).toEqual(expected(45).map((p) => p.id));
    await expect(collect(second, {}, { not: 'a token' })).rejects.toThrow(ConfigError);
  });

  it('pages several windows of one backfill concurrently through one connector', async () => {
    const server = await start({ count: 90 });
    const source = await connect(server, { pageSize: 7 });
    const all = expected(90);
    const cuts = [all[0]!.modifiedAt, all[30]!.modifiedAt, all[61]!.modifiedAt, '2100-01-01T00:00:00.000Z'];
    const windows = cuts.slice(0, -1).map((since, i) => ({ since, until: cuts[i + 1]! }));
    const results = await Promise.all(windows.map((w) => collect(source, w)));
    const ids = results.map((pages) => pages.flatMap((p) => p.envelopes.map((e) => e.id)));
    expect(ids.map((list) => list.length)).toEqual([30, 31, 29]);
    expect(ids.flat()).toEqual(all.map((p) => p.id));
  });

  it('fetches only changed and discontinued products since the high-water mark after a mutation', async () => {
    const server = await start({ count: 50 });
    const source = await connect(server);
    const firstPages = await collect(source);
    const first = latest(firstPages);
    const highWater = firstPages.at(-1)!.highWater!;
    const changed = server.control.mutate({ update: ['P000003', 'P000041'], discontinue: ['P000017'] });
    expect(changed.modifiedAt! > highWater).toBe(true);

    const next = latest(await collect(source, { since: highWater }));
    // since is inclusive: the product at the mark comes again, unchanged, with the same key.
    const atMark = expected(50).at(-1)!.id;
    expect([...next.keys()].sort()).toEqual(['P000003', 'P000017', 'P000041', atMark].sort());
    expect(next.get(atMark)!.idempotencyKey).toBe(first.get(atMark)!.idempotencyKey);
    expect(next.get('P000017')).toMatchObject({ op: 'delete', data: { discontinued: true } });
    expect(next.get('P000003')!.op).toBe('upsert');
    expect(next.get('P000003')!.sourceVersion).toBe(first.get('P000003')!.sourceVersion! + 1);
    expect(next.get('P000003')!.idempotencyKey).not.toBe(first.get('P000003')!.idempotencyKey);

    // A bounded window ending where the first change happened: only the product at the mark.
    const firstChange = server.control.store.get(2).modifiedAt;
    const until = (await collect(source, { since: highWater, until: firstChange })).flatMap(
      (p) => p.envelopes,
    );
    expect(until.map((e) => e.id)).toEqual([atMark]);
  });

  it('keeps a product without an id or with a bad modifiedAt as a reject, not a crash', async () => {
    const server = await start({ count: 40, faults: { poisonEvery: 7 } });
    const source = await connect(server);
    const pages = await collect(source);
    const rejects = pages.flatMap((p) => p.rejects);
    expect(rejects).toHaveLength(5);
    expect(rejects.filter((r) => r.reason.includes('no id'))).toHaveLength(3);
    expect(rejects.filter((r) => r.reason.includes('modification time'))).toHaveLength(2);
    expect(JSON.parse(rejects[1]!.raw)).toMatchObject({ id: 'P000014', modifiedAt: 'last tuesday' });
    const ids = pages.flatMap((p) => p.envelopes.map((e) => e.id));
    expect(ids).toEqual(
      expected(40)
        .filter((_, i) => (i + 1) % 7 !== 0)
        .map((p) => p.id),
    );
    expect(source.stats().rejects).toBe(5);
  });

  const KNOBS: [string, InventoryFaultOptions, InventorySourceInput?][] = [
    ['latency', { latencyMs: 20 }],
    ['5xx at a rate', { serverError: { rate: 0.3 }, seed: 3 }],
    ['429 with Retry-After 0', { rateLimit: { every: 3, retryAfter: 0 } }],
    ['hung requests', { hang: { every: 4 } }, { timeoutMs: 200 }],
    ['truncated bodies', { truncated: { every: 3 } }],
    ['invalid XML', { malformed: { every: 3 } }],
    ['HTML error pages', { html: { first: 2 } }],
    ['SOAP Server faults', { soapFault: { every: 2 } }],
    ['SOAP Server faults, first N', { soapFault: { first: 3 } }],
  ];

  it.each(KNOBS)('still delivers every product under %s', async (_name, faults, input) => {
    const server = await start({ count: 60, faults });
    const source = await connect(server, input);
    const pages = await collect(source);
    expect(pages.flatMap((p) => p.envelopes.map((e) => e.id))).toEqual(expected(60).map((p) => p.id));
    const stats = source.stats();
    expect(stats.pages).toBe(6);
    if (faults.latencyMs === undefined) {
      expect(stats.retries).toBeGreaterThan(0);
      // Every attempt is counted, and the service saw exactly those (the WSDL download is not a call).
      expect(stats.requests).toBe(6 + stats.retries);
      expect(server.control.stats().requests).toBe(stats.requests);
    }
  });

  it('still delivers every product exactly once when pages overlap', async () => {
    const server = await start({ count: 60, faults: { duplicates: 2 } });
    const source = await connect(server);
    const ids = (await collect(source)).flatMap((p) => p.envelopes.map((e) => e.id));
    expect(ids).toEqual(expected(60).map((p) => p.id));
    expect(source.stats().duplicatesDropped).toBe(2 * 5);
  });

  it('ends with every current version when products change while it pages', async () => {
    const server = await start({ count: 60, faults: { updateWhilePaging: { every: 2 } } });
    const source = await connect(server);
    const got = latest(await collect(source));
    expect(server.control.store.mutationCount).toBeGreaterThan(0);
    const current = [...server.control.store.records()];
    expect(got.size).toBe(60);
    for (const p of current) {
      expect(got.get(p.id)!.data).toEqual(JSON.parse(JSON.stringify(p)));
    }
  });

  it('waits as long as Retry-After says before asking again (measured at the service)', async () => {
    const server = await start({ count: 15, faults: { rateLimit: { first: 1, retryAfter: 1 } } });
    const source = await connect(server);
    const ids = (await collect(source)).flatMap((p) => p.envelopes.map((e) => e.id));
    expect(ids).toHaveLength(15);
    const log = server.control.stats().log;
    expect(log.map((e) => e.status)).toEqual([429, 200, 200]);
    expect(log[1]!.at - log[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(source.stats().retries).toBe(1);
  });

  it('gives up on a Retry-After longer than it may wait, as a transient error', async () => {
    const server = await start({ faults: { rateLimit: { first: 1, retryAfter: 3600 } } });
    const source = await connect(server, { maxRetryAfterMs: 5000 });
    const started = Date.now();
    const err = (await collect(source).catch((e: unknown) => e)) as SyncError;
    expect(err).toBeInstanceOf(SourceTransientError);
    expect(err.message).toMatch(/asked to wait 3600 s/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops at once with a permanent error on an authentication fault, without the password anywhere', async () => {
    const server = await start();
    const source = await connect(server, { password: 'Wrong-password-123' });
    const started = Date.now();
    const err = (await collect(source).catch((e: unknown) => e)) as SyncError;
    expect(err).toBeInstanceOf(SourcePermanentError);
    expect(err.exitCode).toBe(1);
    expect(err.message).toMatch(/rejected the credentials/);
    expect(err.message).toMatch(/soap:Client: authentication failed/);
    expect(err.hint).toContain('SYNCCTL_INVENTORY_PASSWORD');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(server.control.stats().requests).toBe(1);
    expect(source.stats().retries).toBe(0);
    const everything = JSON.stringify({
      message: err.message,
      hint: err.hint,
      details: err.details,
      cause: String(err.cause),
    });
    expect(everything).not.toContain('Wrong-password-123');
    expect(everything).not.toContain(PASSWORD);
  });

  it('reports a broken WSDL as permanent and an unreachable one as transient', async () => {
    const server = await start();
    const notFound = (await openInventorySource({ wsdlUrl: `${server.url}/nope?wsdl`, retries: 2 }).catch(
      (e: unknown) => e,
    )) as SyncError;
    expect(notFound).toBeInstanceOf(SourcePermanentError);
    expect(notFound.message).toMatch(/WSDL at .* is broken: HTTP 404/);
    expect(notFound.hint).toContain('SYNCCTL_INVENTORY_WSDL');

    const notWsdl = (await openInventorySource({
      wsdlUrl: new URL('/_control/stats?wsdl', server.url).href,
      retries: 2,
    }).catch((e: unknown) => e)) as SyncError;
    expect(notWsdl).toBeInstanceOf(SourcePermanentError);
    expect(notWsdl.message).toMatch(/not a usable WSDL/);

    const noOperation = (await openInventorySource({
      wsdlUrl: server.wsdlUrl,
      operation: 'ListWidgets',
    }).catch((e: unknown) => e)) as SyncError;
    expect(noOperation).toBeInstanceOf(SourcePermanentError);
    expect(noOperation.message).toMatch(/no operation ListWidgets \(it has: ListProducts\)/);

    const port = await freePort();
    const unreachable = (await openInventorySource({
      wsdlUrl: `http://127.0.0.1:${port}/inventory?wsdl`,
      retries: 1,
      backoffBaseMs: 5,
    }).catch((e: unknown) => e)) as SyncError;
    expect(unreachable).toBeInstanceOf(SourceTransientError);
    expect(unreachable.message).toMatch(
      /cannot reach the Inventory WSDL .* after 2 attempt\(s\): ECONNREFUSED/,
    );
  });

  it('yields the pages before a page that stays invalid XML, then fails naming its page token', async () => {
    const server = await start({ count: 60, faults: { malformed: { from: 3 } } });
    const source = await connect(server, { retries: 2 });
    const pages: SourcePage[] = [];
    let failure: unknown;
    try {
      for await (const page of source.pages({})) pages.push(page);
    } catch (err) {
      failure = err;
    }
    expect(pages).toHaveLength(2);
    expect(pages.flatMap((p) => p.envelopes.map((e) => e.id))).toEqual(expected(20).map((p) => p.id));
    const err = failure as SourceMalformedError;
    expect(err).toBeInstanceOf(SourceMalformedError);
    expect(err.details).toMatchObject({ pageToken: pages[1]!.cursor, page: 3, pagesFetched: 2, attempts: 3 });
    expect(err.message).toContain(`page token "${String(pages[1]!.cursor)}"`);
    expect(err.message).toMatch(/not valid XML/);
    expect(server.control.stats().requests).toBe(2 + 3);

    // Once the service is healthy again, resuming from the last good cursor completes the set.
    server.control.setFaults({});
    const rest = (await collect(source, {}, pages[1]!.cursor)).flatMap((p) => p.envelopes.map((e) => e.id));
    expect(rest).toEqual(
      expected(60)
        .slice(20)
        .map((p) => p.id),
    );
  });

  it('rejects a stale page token as a permanent error telling how to recover', async () => {
    const server = await start();
    const source = await connect(server);
    const err = (await collect(source, {}, 'bm90LWEtdG9rZW4').catch((e: unknown) => e)) as SyncError;
    expect(err).toBeInstanceOf(SourcePermanentError);
    expect(err.message).toMatch(/invalid pageToken/);
    expect(err.hint).toMatch(/--full/);
  });
});
