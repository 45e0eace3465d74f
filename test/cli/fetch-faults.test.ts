import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer } from '../../fixtures/inventory/server.js';
import { contentHashOf } from '../../src/records/envelope.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createTopic, readAll, testBrokers, uniqueName, type ReadRecord } from '../helpers/kafka.js';
import { readNdjson, tempDir } from './fetch-helpers.js';

const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function summaryOf(text: string): FetchSummary {
  return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as FetchSummary;
}

/** content hashes per id, as found in the topic */
function hashesById(records: ReadRecord[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const r of records) {
    const envelope = JSON.parse(r.value as string) as { id: string; contentHash: string };
    const set = map.get(envelope.id) ?? new Set<string>();
    set.add(envelope.contentHash);
    map.set(envelope.id, set);
  }
  return map;
}

function hashOfCurrent(record: object, deleted: boolean): string {
  const data = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
  return contentHashOf(deleted ? 'delete' : 'upsert', deleted ? null : data);
}

describe('fetch --publish under every fault knob', () => {
  it('CRM: 5xx, 429 + Retry-After, hangs, HTML pages, truncated and malformed bodies, duplicates, changes while paging', async () => {
    const server = await startCrmServer({
      seed: 21,
      count: 600,
      products: 30,
      token: 'faulty',
      faults: {
        seed: 3,
        serverError: { rate: 0.15 },
        rateLimit: { every: 7, retryAfter: 1 },
        hang: { every: 19, times: 1 },
        html: { every: 11 },
        truncated: { every: 13 },
        malformed: { every: 17 },
        duplicates: 2,
        updateWhilePaging: { every: 5, times: 2 },
      },
    });
    closers.push(() => server.close());
    const dir = tempDir();
    const topic = uniqueName('fetch-crm-faults');
    await createTopic(topic, 3);
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: server.url,
      SYNCCTL_CRM_TOKEN: 'faulty',
      SYNCCTL_BROKERS: testBrokers(),
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const args = ['--json', 'fetch', '--source', 'crm', '--publish', '--topic', topic];
    const tuning = [
      '--crm-page-size',
      '40',
      '--crm-timeout',
      '1500',
      '--crm-backoff-limit',
      '300',
      '--crm-retries',
      '6',
    ];
    const first = await runSyncctl([...args, ...tuning], { env });
    expect(first.code, first.stderr).toBe(0);
    const summary = summaryOf(first.stdout);
    expect(summary.retries).toBeGreaterThan(5);
    const fired = server.control.stats().faultsFired;
    for (const knob of [
      'serverError',
      'rateLimit',
      'hang',
      'html',
      'truncated',
      'malformed',
      'updateWhilePaging',
    ]) {
      expect(fired[knob], knob).toBeGreaterThan(0);
    }
    // The next incremental run brings the records that changed while the first one paged.
    const second = await runSyncctl([...args, ...tuning], { env });
    expect(second.code, second.stderr).toBe(0);

    const byId = hashesById(await readAll(topic));
    expect(byId.size).toBe(600);
    for (const c of server.control.store.records()) {
      const deleted = c.archived || c.deletedAt !== null;
      expect(byId.get(c.id)?.has(hashOfCurrent(c, deleted)), c.id).toBe(true);
    }
  });

  it('Inventory: SOAP faults, invalid XML, HTML pages, 429, 5xx, hangs, duplicates', async () => {
    const server = await startInventoryServer({
      seed: 8,
      count: 400,
      user: 'u',
      password: 'p4ssw0rd',
      faults: {
        seed: 4,
        soapFault: { every: 6 },
        malformed: { every: 9 },
        html: { every: 11 },
        rateLimit: { every: 13, retryAfter: 1 },
        serverError: { rate: 0.1 },
        truncated: { every: 17 },
        hang: { every: 23, times: 1 },
        duplicates: 3,
      },
    });
    closers.push(() => server.close());
    const dir = tempDir();
    const topic = uniqueName('fetch-inv-faults');
    await createTopic(topic, 3);
    const env = isolatedEnv({
      SYNCCTL_INVENTORY_WSDL: server.wsdlUrl,
      SYNCCTL_INVENTORY_USER: 'u',
      SYNCCTL_INVENTORY_PASSWORD: 'p4ssw0rd',
      SYNCCTL_BROKERS: testBrokers(),
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const run = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'inventory',
        '--publish',
        '--topic',
        topic,
        '--inventory-page-size',
        '25',
        '--inventory-timeout-ms',
        '1500',
        '--inventory-backoff-base',
        '50',
        '--inventory-backoff-limit',
        '300',
        '--inventory-retries',
        '6',
      ],
      { env },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(summaryOf(run.stdout).retries).toBeGreaterThan(3);
    const stats = server.control.stats();
    expect(stats.soap.serverFaults).toBeGreaterThan(0);
    for (const knob of ['malformed', 'html', 'rateLimit', 'serverError', 'truncated', 'hang']) {
      expect(stats.faultsFired[knob], knob).toBeGreaterThan(0);
    }
    const byId = hashesById(await readAll(topic));
    expect(byId.size).toBe(400);
    // The same products fetched with every knob off: what the faulty run must have published.
    server.control.setFaults({});
    const clean = join(dir, 'clean.ndjson');
    expect(
      (await runSyncctl(['fetch', '--source', 'inventory', '--full', '--out', clean], { env })).code,
    ).toBe(0);
    const expected = readNdjson(clean);
    expect(expected).toHaveLength(400);
    for (const e of expected) {
      expect(byId.get(e.id)?.size, e.id).toBe(1);
      expect(byId.get(e.id)?.has(e.contentHash), e.id).toBe(true);
    }
  });
});
