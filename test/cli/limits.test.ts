/**
 * The limits that keep one hostile source from exhausting memory, end to end through bin/syncctl:
 * response size caps (CRM, SOAP, Analytics), the record size cap (fetch, publish, consume) and the
 * page cap of a fetch (then a rerun resumes: nothing lost, nothing doubled).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { expectedCustomers } from '../../fixtures/data/customers.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { DLQ_HEADER } from '../../src/connectors/dead-letter.js';
import { ExitCode } from '../../src/errors.js';
import { makeEnvelope } from '../../src/records/envelope.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { firstRound, publishAll, SourceWorld } from '../helpers/consume-data.js';
import { createHarness, type Harness } from '../helpers/consume-harness.js';
import { sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { createTopic, readAll, testBrokers, uniqueName } from '../helpers/kafka.js';
import { duplicates, idsOf, readNdjson, tempDir } from './fetch-helpers.js';

const TOKEN = 'limits-crm-token';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function crm(options: CrmServerOptions = {}): Promise<CrmServer> {
  const server = await startCrmServer({ seed: 11, count: 60, products: 10, token: TOKEN, ...options });
  closers.push(() => server.close());
  return server;
}

/** `fetch --source crm --json` of the fixture into <dir>/customers.ndjson, pages of 20, plus `extra`. */
async function fetchCrm(server: CrmServer, dir: string, ...extra: string[]) {
  const out = join(dir, 'customers.ndjson');
  const run = await runSyncctl(
    ['--json', 'fetch', '--source', 'crm', '--crm-page-size', '20', '--out', out, ...extra],
    {
      env: isolatedEnv({
        SYNCCTL_CRM_URL: server.url,
        SYNCCTL_CRM_TOKEN: TOKEN,
        SYNCCTL_STATE: join(dir, 'state.db'),
      }),
    },
  );
  return { ...run, out };
}

function summaryOf(text: string): FetchSummary {
  return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as FetchSummary;
}

interface RejectLine {
  reason: string;
  raw: string;
  line?: number;
}

function readRejects(path: string): RejectLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as RejectLine);
}

/** A valid customer envelope of about `bytes` bytes. */
function bigCustomer(bytes: number) {
  return makeEnvelope({
    source: 'crm',
    id: 'C-big',
    op: 'upsert',
    data: { notes: 'n'.repeat(bytes) },
    sourceUpdatedAt: '2026-01-01T00:00:00.000Z',
  });
}

describe('response size caps', () => {
  it('a CRM page larger than --crm-max-response-bytes is cut off while streaming: E_LIMIT, exit 1, earlier pages kept', async () => {
    // Chunked, without a Content-Length: only counting while reading can stop it.
    const server = await crm({ faults: { hugeBody: { from: 2, bytes: 40 * 1024 * 1024 } } });
    const { out, ...run } = await fetchCrm(server, tempDir(), '--crm-max-response-bytes', '1000000');
    expect(run.code, run.stderr).toBe(ExitCode.Failure);
    expect(run.stderr).toMatch(
      /a CRM page from .* is too large \(at least \d+ bytes, more than the 1000000-byte limit\)/,
    );
    expect(run.stderr).toMatch(/raise --crm-max-response-bytes, SYNCCTL_CRM_MAX_RESPONSE_BYTES/);
    expect(summaryOf(run.stdout)).toMatchObject({ status: 'failed', pages: 1, error: { code: 'E_LIMIT' } });
    expect(readNdjson(out)).toHaveLength(20);
    // Not retried: the same request would bring the same body.
    expect(server.control.stats().requests).toBe(2);
  });

  it('a SOAP response larger than --inventory-max-response-bytes stops the fetch with E_LIMIT', async () => {
    const server: InventoryServer = await startInventoryServer({
      seed: 3,
      count: 30,
      faults: { hugeBody: { first: 1, bytes: 40 * 1024 * 1024 } },
    });
    closers.push(() => server.close());
    const dir = tempDir();
    const run = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'inventory',
        '--inventory-max-response-bytes',
        '1000000',
        '--out',
        join(dir, 'products.ndjson'),
      ],
      {
        env: isolatedEnv({ SYNCCTL_INVENTORY_WSDL: server.wsdlUrl, SYNCCTL_STATE: join(dir, 'state.db') }),
      },
    );
    expect(run.code, run.stderr).toBe(ExitCode.Failure);
    expect(run.stderr).toMatch(
      /an Inventory SOAP response \(ListProducts page 1 \(first page\)\) is too large/,
    );
    expect(run.stderr).toMatch(/--inventory-max-response-bytes/);
    expect(summaryOf(run.stdout)).toMatchObject({ status: 'failed', pages: 0, error: { code: 'E_LIMIT' } });
    expect(server.control.stats().requests).toBe(1);
  });

  it('an Analytics answer larger than --analytics-max-response-bytes stops consume with E_LIMIT', async () => {
    const h: Harness = await createHarness('sqlite', {
      faults: { hugeBody: { first: 1, on: ['ingest'], bytes: 40 * 1024 * 1024 } },
    });
    closers.push(() => h.close());
    const { customerEnvelopes, productEnvelopes } = firstRound(new SourceWorld(), 5, 3);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const run = await runSyncctl(
      [...h.cliArgs(), '--once', '--max-delivery-delay', '0', '--analytics-max-response-bytes', '1000000'],
      { env: isolatedEnv(h.cliEnv()), timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(ExitCode.Failure);
    expect(run.stderr).toMatch(/an Analytics answer from .* is too large/);
    expect(run.stderr).toMatch(/--analytics-max-response-bytes/);
  });
});

describe('--max-record-bytes', () => {
  it('fetch: an oversized record goes to the reject file with the reason; the rest is written; exit 3', async () => {
    const server = await crm({ faults: { hugeRecord: { every: 2, bytes: 300_000 } } });
    const { out, ...run } = await fetchCrm(server, tempDir(), '--max-record-bytes', '200000');
    expect(run.code, run.stderr).toBe(ExitCode.Partial);
    expect(summaryOf(run.stdout)).toMatchObject({ status: 'completed', records: 59, rejects: 1 });
    const rejects = readRejects(`${out}.rejects.ndjson`);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]!.reason).toMatch(
      /^customer C\d+: record too large: \d+ bytes, over the 200000-byte limit \(--max-record-bytes\)$/,
    );
    // The raw record in a reject line is cut to its beginning; the reason names the record.
    const kept = /^customer (C\d+)/.exec(rejects[0]!.reason)![1]!;
    const all = [...idsOf(readNdjson(out)), kept].sort();
    expect(all).toEqual(
      [...expectedCustomers({ seed: 11, count: 60, products: 10 })].map((c) => c.id).sort(),
    );
  });

  it('publish --in: a line over the limit is rejected with its line number and never sent; exit 3', async () => {
    const topic = uniqueName('limits-publish');
    await createTopic(topic, 1);
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const good = sampleEnvelopes(4, 4);
    const big = bigCustomer(50_000);
    writeNdjson(input, [good[0]!, good[1]!, big, good[2]!, good[3]!]);
    const run = await runSyncctl(
      ['--json', 'publish', '--topic', topic, '--in', input, '--max-record-bytes', '20000'],
      { env: isolatedEnv({ SYNCCTL_BROKERS: testBrokers() }) },
    );
    expect(run.code, run.stderr).toBe(ExitCode.Partial);
    expect(JSON.parse(run.stdout)).toMatchObject({ records: 4, rejects: 1 });
    const [reject] = readRejects(`${input}.rejects.ndjson`) as [RejectLine];
    expect(reject).toMatchObject({ line: 3 });
    expect(reject.reason).toMatch(
      /^record too large: \d+ bytes, over the 20000-byte limit \(--max-record-bytes\)$/,
    );
    expect((await readAll(topic)).map((m) => m.key).sort()).toEqual(good.map((e) => e.id).sort());
  });

  it('consume: a message over the limit is dead-lettered with E_LIMIT, the rest delivered; exit 3', async () => {
    const h: Harness = await createHarness('sqlite');
    closers.push(() => h.close());
    const { customerEnvelopes, productEnvelopes } = firstRound(new SourceWorld(), 5, 3);
    const big = bigCustomer(300_000);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: [...customerEnvelopes, big] },
    ]);
    const run = await runSyncctl([...h.cliArgs(), '--once', '--json', '--max-record-bytes', '200000'], {
      env: isolatedEnv(h.cliEnv()),
      timeoutMs: 120_000,
    });
    expect(run.code, run.stderr).toBe(ExitCode.Partial);
    expect(JSON.parse(run.stdout)).toMatchObject({ deadLetteredMessages: 1, delivered: 5 });
    const letters = await readAll(h.dlqTopic);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.key).toBe('C-big');
    expect(letters[0]!.headers).toMatchObject({
      [DLQ_HEADER.errorClass]: 'LimitExceededError',
      [DLQ_HEADER.errorCode]: 'E_LIMIT',
    });
    expect(letters[0]!.headers[DLQ_HEADER.errorMessage]).toMatch(
      /over the 200000-byte limit \(--max-record-bytes\)/,
    );
  });
});

describe('--max-pages', () => {
  it('stops cleanly with status page-limit (exit 0); the next run resumes and finishes: nothing lost or doubled', async () => {
    const server = await crm();
    const dir = tempDir();
    const first = await fetchCrm(server, dir, '--max-pages', '2');
    expect(first.code, first.stderr).toBe(ExitCode.Ok);
    expect(summaryOf(first.stdout)).toMatchObject({ status: 'page-limit', pages: 2, records: 40 });
    // The page after the limit was never requested.
    expect(server.control.stats().requests).toBe(2);

    const second = await fetchCrm(server, dir);
    expect(second.code, second.stderr).toBe(ExitCode.Ok);
    expect(summaryOf(second.stdout)).toMatchObject({ status: 'completed', resumed: true, records: 20 });
    const ids = idsOf(readNdjson(second.out));
    expect(duplicates(ids)).toEqual([]);
    expect(ids.sort()).toEqual(
      [...expectedCustomers({ seed: 11, count: 60, products: 10 })].map((c) => c.id).sort(),
    );
  });
});
