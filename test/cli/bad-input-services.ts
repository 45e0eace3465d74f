/** Bad-input cases: CRM pages, SOAP responses, Kafka messages, unreachable or wrong services. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startCrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryFaultOptions } from '../../fixtures/inventory/server.js';
import { DLQ_HEADER } from '../../src/connectors/dead-letter.js';
import { firstRound, publishAll, SourceWorld, type Published } from '../helpers/consume-data.js';
import { createHarness } from '../helpers/consume-harness.js';
import { readAll, testBrokers } from '../helpers/kafka.js';
import { cli, file, readRejects, summary, type BadInputCase, type Ctx } from './bad-input-support.js';

/** Servers and harnesses a case started; the test closes them after each case. */
export const closers: (() => Promise<void>)[] = [];

const CRM_TOKEN = 'bad-input-crm-token';
const FAST_CRM = ['--crm-retries', '0', '--crm-timeout', '2000', '--crm-max-retry-after', '2000'];

async function fetchFromCrm(ctx: Ctx, url: string, extra: string[] = [], token = CRM_TOKEN) {
  const out = file(ctx, 'crm.ndjson');
  const run = await cli(
    [
      '--json',
      'fetch',
      '--source',
      'crm',
      '--full',
      '--out',
      out,
      '--rejects',
      `${out}.rejects`,
      ...FAST_CRM,
      ...extra,
    ],
    { SYNCCTL_CRM_URL: url, SYNCCTL_CRM_TOKEN: token, SYNCCTL_STATE: join(ctx.dir, `${out}.db`) },
  );
  return { ...run, out, rejects: `${out}.rejects` };
}

async function crmFixture(options: CrmServerOptions): Promise<string> {
  const server = await startCrmServer({ seed: 7, count: 30, products: 5, token: CRM_TOKEN, ...options });
  closers.push(() => server.close());
  return server.url;
}

/** A CRM that answers every listing request with this status and body. */
async function fakeCrm(status: number, body: string, contentType = 'application/json'): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': contentType });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const customer = (id: string | null, updatedAt: unknown) => ({
  id,
  updatedAt,
  version: 1,
  name: 'N',
  archived: false,
});

function crmCase(
  c: Omit<BadInputCase, 'area' | 'run'> & { url: () => Promise<string>; extra?: string[]; token?: string },
): BadInputCase {
  return { ...c, area: 'CRM page', run: async (ctx) => fetchFromCrm(ctx, await c.url(), c.extra, c.token) };
}

const crm: BadInputCase[] = [
  crmCase({
    input: 'an HTML error page (502 text/html)',
    does: 'temporary failure naming the page URL and status; nothing fetched',
    exit: 75,
    says: [/502/, /127\.0\.0\.1:\d+/],
    url: () => crmFixture({ faults: { html: { from: 1 } } }),
  }),
  crmCase({
    input: 'an HTML page with status 200',
    does: 'temporary failure: the page is not JSON (names the URL)',
    exit: 75,
    says: [/JSON/i, /127\.0\.0\.1:\d+/],
    url: () => fakeCrm(200, '<html><body>Maintenance</body></html>', 'text/html'),
  }),
  crmCase({
    input: 'a JSON body cut short (connection dropped)',
    does: 'temporary failure naming the URL; rerun continues',
    exit: 75,
    says: [/127\.0\.0\.1:\d+/],
    url: () => crmFixture({ faults: { truncated: { from: 1 } } }),
  }),
  crmCase({
    input: 'a 200 body that is not valid JSON',
    does: 'temporary failure naming the URL',
    exit: 75,
    says: [/127\.0\.0\.1:\d+/],
    url: () => crmFixture({ faults: { malformed: { from: 1 } } }),
  }),
  crmCase({
    input: 'records that are not an array',
    does: 'temporary failure naming the records path and the page; nothing fetched',
    exit: 75,
    says: [/CRM page 1 .* has no records array at "results"/],
    url: () => fakeCrm(200, JSON.stringify({ results: { id: 'C1' }, total: 1 })),
  }),
  crmCase({
    input: 'a record without an id',
    does: 'rejects the record (reject file, page and reason), keeps the rest',
    exit: 3,
    says: [/reject/i],
    url: () =>
      fakeCrm(
        200,
        JSON.stringify({
          results: [customer('C1', '2026-01-01T00:00:00Z'), customer(null, '2026-01-02T00:00:00Z')],
          total: 2,
        }),
      ),
    kept: (_c, run) => {
      const lines = readRejects((run as unknown as { rejects: string }).rejects);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.reason).toMatch(/id/);
    },
  }),
  crmCase({
    input: 'a record whose updatedAt is not a date',
    does: 'rejects the record with the field named, keeps the rest',
    exit: 3,
    says: [/reject/i],
    url: () =>
      fakeCrm(
        200,
        JSON.stringify({
          results: [customer('C1', '2026-01-01T00:00:00Z'), customer('C2', 'last tuesday')],
          total: 2,
        }),
      ),
    kept: (_c, run) => {
      const lines = readRejects((run as unknown as { rejects: string }).rejects);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.reason).toMatch(/updatedAt/);
    },
  }),
  crmCase({
    input: 'a wrong token (401)',
    does: 'failure naming the status and the token setting',
    exit: 1,
    says: [/401/, /SYNCCTL_CRM_TOKEN|--crm-token/],
    url: () => crmFixture({}),
    token: 'wrong-token',
  }),
  crmCase({
    input: 'a token without permission (403)',
    does: 'failure naming the status',
    exit: 1,
    says: [/403/],
    url: () => crmFixture({ forbiddenTokens: ['forbidden-token'] }),
    token: 'forbidden-token',
  }),
  crmCase({
    input: 'a wrong listing path (404)',
    does: 'failure naming the URL and status',
    exit: 1,
    says: [/404/, /\/v1\/nowhere/],
    url: () => crmFixture({}),
    extra: ['--crm-path', '/v1/nowhere'],
  }),
  crmCase({
    input: '429 with a Retry-After longer than allowed',
    does: 'temporary failure naming the wait asked for; no CPU spin',
    exit: 75,
    says: [/429|Retry-After/i],
    url: () => crmFixture({ faults: { rateLimit: { from: 1, retryAfter: 3600 } } }),
  }),
  crmCase({
    input: 'persistent 503',
    does: 'temporary failure after the retries, naming the status',
    exit: 75,
    says: [/503/],
    url: () => crmFixture({ faults: { serverError: { from: 1, status: 503 } } }),
  }),
  crmCase({
    input: 'a page larger than `--crm-max-response-bytes` (streamed, no Content-Length)',
    does: 'cut off while it streams in (never buffered whole), not retried; failure E_LIMIT naming the page and the setting',
    exit: 1,
    says: [/a CRM page from .*127\.0\.0\.1:\d+.* is too large/, /--crm-max-response-bytes/],
    url: () => crmFixture({ faults: { hugeBody: { from: 1, bytes: 16 * 1024 * 1024 } } }),
    extra: ['--crm-max-response-bytes', '1000000'],
  }),
  crmCase({
    input: 'a record larger than `--max-record-bytes`',
    does: 'rejects the record (reject file: id, size and limit), keeps the rest',
    exit: 3,
    says: [/reject/i],
    url: () => crmFixture({ faults: { hugeRecord: { first: 1, bytes: 300_000 } } }),
    extra: ['--max-record-bytes', '200000'],
    kept: (_c, run) => {
      const lines = readRejects((run as unknown as { rejects: string }).rejects);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.reason).toMatch(/^customer C\d+: record too large: .*\(--max-record-bytes\)$/);
    },
  }),
  crmCase({
    input: 'a CRM that never answers',
    does: 'temporary failure after --crm-timeout',
    exit: 75,
    says: [/tim(e|ed) ?out/i],
    url: () => crmFixture({ faults: { hang: { from: 1 } } }),
  }),
];

const INV_USER = 'inv-user';
const INV_PASSWORD = 'inv-password-bad-input';

async function fetchFromInventory(
  ctx: Ctx,
  faults: InventoryFaultOptions,
  password = INV_PASSWORD,
  wsdl?: string,
  env: Record<string, string> = {},
) {
  let wsdlUrl = wsdl;
  if (!wsdlUrl) {
    const server = await startInventoryServer({
      seed: 7,
      count: 30,
      user: INV_USER,
      password: INV_PASSWORD,
      faults,
    });
    closers.push(() => server.close());
    wsdlUrl = server.wsdlUrl;
  }
  const out = file(ctx, 'inv.ndjson');
  const run = await cli(
    [
      '--json',
      'fetch',
      '--source',
      'inventory',
      '--full',
      '--out',
      out,
      '--rejects',
      `${out}.rejects`,
      '--inventory-retries',
      '0',
      '--inventory-timeout-ms',
      '3000',
    ],
    {
      SYNCCTL_INVENTORY_WSDL: wsdlUrl,
      SYNCCTL_INVENTORY_USER: INV_USER,
      SYNCCTL_INVENTORY_PASSWORD: password,
      SYNCCTL_STATE: join(ctx.dir, `${out}.db`),
      ...env,
    },
  );
  return { ...run, out, rejects: `${out}.rejects` };
}

function soapCase(
  c: Omit<BadInputCase, 'area' | 'run'> & {
    faults?: InventoryFaultOptions;
    password?: string;
    wsdl?: () => Promise<string>;
    env?: Record<string, string>;
  },
): BadInputCase {
  return {
    ...c,
    area: 'SOAP response',
    run: async (ctx) =>
      fetchFromInventory(ctx, c.faults ?? {}, c.password, c.wsdl ? await c.wsdl() : undefined, c.env),
  };
}

const soap: BadInputCase[] = [
  soapCase({
    input: 'a soap:Server fault',
    does: 'temporary failure quoting the fault',
    exit: 75,
    says: [/ListProducts page 1/, /soap:Server: service temporarily unavailable/],
    faults: { soapFault: { from: 1 } },
  }),
  soapCase({
    input: 'an HTML error page instead of XML',
    does: 'temporary failure naming the status',
    exit: 75,
    says: [/ListProducts page 1/, /HTTP 502 \(text\/html\)/],
    faults: { html: { from: 1 } },
  }),
  soapCase({
    input: 'a 200 body that is not XML',
    does: 'temporary failure: not valid XML, naming the page',
    exit: 75,
    says: [/ListProducts page 1/, /not valid XML/],
    faults: { malformed: { from: 1 } },
  }),
  soapCase({
    input: 'a response cut short',
    does: 'temporary failure naming the page',
    exit: 75,
    says: [/ListProducts page 1/, /aborted/],
    faults: { truncated: { from: 1 } },
  }),
  soapCase({
    input: 'products with an empty id or a modifiedAt that is not a date',
    does: 'rejects those products (reject file with reason), keeps the rest',
    exit: 3,
    says: [/reject/i],
    faults: { poisonEvery: 10 },
    kept: (_c, run) => {
      const lines = readRejects((run as unknown as { rejects: string }).rejects);
      expect(lines).toHaveLength(3);
      for (const l of lines) expect(l.reason).toMatch(/id|modifiedAt/);
    },
  }),
  soapCase({
    input: 'a response larger than `SYNCCTL_INVENTORY_MAX_RESPONSE_BYTES`',
    does: 'cut off while it streams in, not retried; failure E_LIMIT naming the call and the setting',
    exit: 1,
    says: [/an Inventory SOAP response \(ListProducts page 1/, /--inventory-max-response-bytes/],
    faults: { hugeBody: { from: 1, bytes: 16 * 1024 * 1024 } },
    env: { SYNCCTL_INVENTORY_MAX_RESPONSE_BYTES: '1000000' },
  }),
  soapCase({
    input: 'a product larger than `SYNCCTL_MAX_RECORD_BYTES`',
    does: 'rejects the product (reject file: id, size and limit), keeps the rest',
    exit: 3,
    says: [/reject/i],
    faults: { hugeRecord: { first: 1, bytes: 300_000 } },
    env: { SYNCCTL_MAX_RECORD_BYTES: '200000' },
    kept: (_c, run) => {
      const lines = readRejects((run as unknown as { rejects: string }).rejects);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.reason).toMatch(/^product P\d+: record too large: .*\(--max-record-bytes\)$/);
    },
  }),
  soapCase({
    input: 'a wrong WS-Security password (soap:Client fault)',
    does: 'failure naming the authentication fault',
    exit: 1,
    says: [/authentication/i],
    password: 'wrong-password',
  }),
  soapCase({
    input: 'a WSDL URL that serves JSON, not a WSDL',
    does: 'failure naming the WSDL URL',
    exit: 1,
    says: [/WSDL/i, /127\.0\.0\.1:\d+/],
    wsdl: () => fakeCrm(200, '{"hello":"world"}'),
  }),
];

/** One consume --once over these raw messages on the customer topic; returns the run and the letters. */
async function consumeRaw(raw: NonNullable<Published['raw']>, extra: string[] = []) {
  const h = await createHarness('sqlite');
  closers.push(() => h.close());
  const world = new SourceWorld();
  const { customerEnvelopes, productEnvelopes } = firstRound(world, 3, 2);
  await publishAll([
    { topic: h.productTopic, envelopes: productEnvelopes },
    { topic: h.customerTopic, envelopes: customerEnvelopes, raw },
  ]);
  const run = await cli([...h.cliArgs(), '--once', '--json', ...extra], h.cliEnv());
  const letters = await readAll(h.dlqTopic);
  return { ...run, letters, dlqTopic: h.dlqTopic };
}

type Letters = Awaited<ReturnType<typeof readAll>>;
function kafkaCase(
  input: string,
  raw: NonNullable<Published['raw']>,
  reason: RegExp,
  exit = 3,
  extra: string[] = [],
): BadInputCase {
  return {
    area: 'Kafka message',
    input,
    does: 'dead-lettered with its reason and partition/offset; the run completes',
    exit,
    says: [/dead-letter/i],
    run: (ctx) => {
      void ctx;
      return consumeRaw(raw, extra);
    },
    kept: (_c, run) => {
      const letters = (run as unknown as { letters: Letters }).letters;
      expect(letters).toHaveLength(1);
      const h = letters[0]!.headers;
      expect(h[DLQ_HEADER.kind]).toBe('source-message');
      expect(h[DLQ_HEADER.sourcePartition]).toMatch(/^\d+$/);
      expect(h[DLQ_HEADER.sourceOffset]).toMatch(/^\d+$/);
      expect(h[DLQ_HEADER.errorMessage]).toMatch(reason);
    },
    boundMs: 60_000,
  };
}

const kafka: BadInputCase[] = [
  kafkaCase('a message that is not JSON', [{ key: 'C9', value: 'this is not json' }], /JSON/),
  kafkaCase(
    'JSON that is not an envelope (wrong schema)',
    [{ key: 'C9', value: '{"customer":"C9"}' }],
    /required|envelope/,
  ),
  kafkaCase(
    'a message value that is not valid UTF-8',
    [{ key: 'C9', value: Buffer.from([0xc3, 0x28, 0x7b]) }],
    /UTF-8|JSON/,
  ),
  {
    area: 'Kafka message',
    input: 'a tombstone (null value) with a key',
    does: 'a delete of that entity, counted as a tombstone',
    exit: 0,
    says: [],
    run: () => consumeRaw([{ key: 'C9', value: null }]),
    kept: (_c, run) => {
      expect(summary(run)).toMatchObject({ tombstones: 1, deadLetteredMessages: 0 });
      expect((run as unknown as { letters: Letters }).letters).toHaveLength(0);
    },
    boundMs: 60_000,
  },
  kafkaCase(
    'a tombstone without a key',
    [{ key: null, value: null }],
    /tombstone \(null value\) without a key/,
  ),
  kafkaCase(
    'an envelope-like message without a key',
    [{ key: null, value: '{"schemaVersion":1}' }],
    /key|required/,
  ),
  kafkaCase(
    'a message larger than `--max-record-bytes`',
    [{ key: 'C9', value: `{"x":"${'h'.repeat(300 * 1024)}"}` }],
    /over the 200000-byte limit \(--max-record-bytes\)/,
    3,
    ['--max-record-bytes', '200000'],
  ),
  kafkaCase(
    'a huge (900 kB) non-envelope message',
    [{ key: 'C9', value: `{"x":"${'h'.repeat(900 * 1024)}"}` }],
    /required|envelope/,
  ),
];

const services: BadInputCase[] = [
  {
    area: 'service',
    input: "an HTTP server's port given as the Kafka broker",
    does: 'temporary failure naming the broker, within --connect-timeout',
    exit: 75,
    says: [/127\.0\.0\.1:\d+/],
    run: async (ctx) => {
      const url = await fakeCrm(200, 'hello');
      return cli(
        ['-b', url.replace('http://', ''), '--connect-timeout', '3000', 'publish', '--topic', ctx.topic],
        {},
        '',
      );
    },
  },
  {
    area: 'service',
    input: 'a broker port nobody listens on',
    does: 'temporary failure naming the broker',
    exit: 75,
    says: [/127\.0\.0\.1:1\b/],
    run: (ctx) =>
      cli(['-b', '127.0.0.1:1', '--connect-timeout', '3000', 'publish', '--topic', ctx.topic], {}, '{}\n'),
  },
  {
    area: 'service',
    input: 'an unreachable CRM',
    does: 'temporary failure naming the URL',
    exit: 75,
    says: [/127\.0\.0\.1:1\b/],
    run: (ctx) => fetchFromCrm(ctx, 'http://127.0.0.1:1'),
  },
  {
    area: 'service',
    input: 'an unreachable Inventory WSDL',
    does: 'temporary failure naming the WSDL URL',
    exit: 75,
    says: [/127\.0\.0\.1:1\b/],
    run: (ctx) => fetchFromInventory(ctx, {}, INV_PASSWORD, 'http://127.0.0.1:1/inventory?wsdl'),
  },
  {
    area: 'service',
    input: 'an unreachable Analytics during consume',
    does: 'temporary failure naming the URL and batch; a rerun delivers',
    exit: 75,
    says: [/127\.0\.0\.1:1\b/],
    run: async () => {
      const h = await createHarness('sqlite');
      closers.push(() => h.close());
      const world = new SourceWorld();
      const { customerEnvelopes, productEnvelopes } = firstRound(world, 2, 2);
      await publishAll([
        { topic: h.productTopic, envelopes: productEnvelopes },
        { topic: h.customerTopic, envelopes: customerEnvelopes },
      ]);
      return cli([...h.cliArgs(), '--once', '--analytics-retries', '0'], {
        ...h.cliEnv(),
        SYNCCTL_ANALYTICS_URL: 'http://127.0.0.1:1',
      });
    },
    boundMs: 60_000,
  },
  {
    area: 'service',
    input: 'a PostgreSQL state URL with the wrong port',
    does: 'temporary failure naming host and port',
    exit: 75,
    says: [/127\.0\.0\.1:5433/],
    run: () =>
      cli(['--state', 'postgres://postgres@127.0.0.1:5433/test', 'status', '--json'], {
        SYNCCTL_BROKERS: testBrokers(),
      }),
  },
];

export const SERVICE_CASES: BadInputCase[] = [...crm, ...soap, ...kafka, ...services];
