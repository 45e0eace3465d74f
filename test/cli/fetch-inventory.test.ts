import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedProducts } from '../../fixtures/data/products.js';
import {
  startInventoryServer,
  type InventoryServer,
  type InventoryServerOptions,
} from '../../fixtures/inventory/server.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createTopic, readAll, testBrokers, uniqueName } from '../helpers/kafka.js';
import { duplicates, idsOf, readCheckpoint, readNdjson, tempDir } from './fetch-helpers.js';

const USER = 'inv-user';
const PASSWORD = 'inv-secret-password';
const servers: InventoryServer[] = [];

afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.close();
});

async function inventory(options: InventoryServerOptions = {}): Promise<InventoryServer> {
  const server = await startInventoryServer({
    seed: 5,
    count: 250,
    user: USER,
    password: PASSWORD,
    ...options,
  });
  servers.push(server);
  return server;
}

function envFor(server: InventoryServer, dir: string, extra: Record<string, string> = {}) {
  return isolatedEnv({
    SYNCCTL_INVENTORY_WSDL: server.wsdlUrl,
    SYNCCTL_INVENTORY_USER: USER,
    SYNCCTL_INVENTORY_PASSWORD: PASSWORD,
    SYNCCTL_BROKERS: testBrokers(),
    SYNCCTL_STATE: join(dir, 'state.db'),
    ...extra,
  });
}

function expectedIds(count = 250): string[] {
  return [...expectedProducts({ seed: 5, count })].map((p) => p.id);
}

function summaryOf(text: string): FetchSummary {
  return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as FetchSummary;
}

describe('syncctl fetch --source inventory', () => {
  it('a full fetch yields every product exactly once; discontinued ones are deletes', async () => {
    const server = await inventory();
    const dir = tempDir();
    const out = join(dir, 'products.ndjson');
    const run = await runSyncctl(
      ['--json', 'fetch', '--source', 'inventory', '--full', '--inventory-page-size', '40', '--out', out],
      { env: envFor(server, dir) },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const envelopes = readNdjson(out);
    expect(duplicates(idsOf(envelopes))).toEqual([]);
    expect(idsOf(envelopes)).toEqual(expectedIds());
    const discontinued = [...expectedProducts({ seed: 5, count: 250 })]
      .filter((p) => p.discontinued)
      .map((p) => p.id);
    expect(envelopes.filter((e) => e.op === 'delete').map((e) => e.id)).toEqual(discontinued);
    for (const e of envelopes) expect(e).toMatchObject({ source: 'inventory', entity: 'product' });
    expect(summaryOf(run.stdout)).toMatchObject({
      status: 'completed',
      records: 250,
      pages: 7,
      mode: 'full',
    });
    // The password never shows, not even in the summary.
    expect(run.stdout).not.toContain(PASSWORD);
  });

  it('is incremental: after changes only the changed and discontinued products come back', async () => {
    const server = await inventory();
    const dir = tempDir();
    const env = envFor(server, dir);
    expect(
      (await runSyncctl(['fetch', '--source', 'inventory', '--out', join(dir, 'a.ndjson')], { env })).code,
    ).toBe(0);
    const a = readNdjson(join(dir, 'a.ndjson'));
    expect(a).toHaveLength(250);
    const firstKeys = new Set(a.map((e) => e.idempotencyKey));
    const hwBefore = readCheckpoint<{ highWater: string }>(
      join(dir, 'state.db'),
      'fetch:inventory',
    )?.highWater;

    const changed = server.control.mutate({ update: 5, discontinue: 3 });
    const second = await runSyncctl(
      ['--json', 'fetch', '--source', 'inventory', '--out', join(dir, 'b.ndjson')],
      {
        env,
      },
    );
    expect(second.code).toBe(0);
    const b = readNdjson(join(dir, 'b.ndjson'));
    const changedIds = [...changed.updated, ...changed.discontinued];
    for (const id of changedIds) {
      const got = b.filter((e) => e.id === id);
      expect(got, id).toHaveLength(1);
      if (changed.discontinued.includes(id)) expect(got[0]?.op).toBe('delete');
      expect(firstKeys.has(got[0]?.idempotencyKey as string)).toBe(
        changed.discontinued.includes(id) && a.find((e) => e.id === id)?.op === 'delete',
      );
    }
    const others = b.filter((e) => !changedIds.includes(e.id));
    expect(others.length).toBeLessThanOrEqual(1);
    for (const e of others) {
      expect(firstKeys.has(e.idempotencyKey)).toBe(true);
      expect(e.sourceUpdatedAt).toBe(hwBefore);
    }
    expect(summaryOf(second.stdout).checkpoint).toMatchObject({
      before: hwBefore,
      after: changed.modifiedAt,
    });
  });

  it('--publish lands every product in the topic, keyed by id; a rerun adds only what changed', async () => {
    const server = await inventory();
    const dir = tempDir();
    const topic = uniqueName('fetch-inventory');
    await createTopic(topic, 3);
    const env = envFor(server, dir);
    const args = [
      'fetch',
      '--source',
      'inventory',
      '--publish',
      '--topic',
      topic,
      '--inventory-page-size',
      '50',
    ];
    const first = await runSyncctl(args, { env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/250 record\(s\).*to topic /);
    let records = await readAll(topic);
    expect(records.map((r) => r.key).sort()).toEqual(expectedIds().sort());
    for (const r of records) expect(r.headers['syncctl-entity']).toBe('product');

    const changed = server.control.mutate({ update: 4 });
    const second = await runSyncctl(args, { env });
    expect(second.code).toBe(0);
    records = await readAll(topic);
    const extra = records.length - 250;
    expect(extra).toBeGreaterThanOrEqual(4);
    expect(extra).toBeLessThanOrEqual(5);
    for (const id of changed.updated) expect(records.filter((r) => r.key === id)).toHaveLength(2);
  });

  it('a backfill over windows fetches each product of the range once', async () => {
    const server = await inventory();
    const dir = tempDir();
    const out = join(dir, 'bf.ndjson');
    // 250 products 10 s apart from 2021-01-01: about 42 minutes.
    const run = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'inventory',
        '--since',
        '2021-01-01',
        '--until',
        '2021-01-01T01:00',
        '--window',
        '10m',
        '--concurrency',
        '3',
        '--out',
        out,
      ],
      { env: envFor(server, dir) },
    );
    expect(run.code, run.stderr).toBe(0);
    const ids = idsOf(readNdjson(out));
    expect(duplicates(ids)).toEqual([]);
    expect(ids.sort()).toEqual(expectedIds().sort());
    expect(summaryOf(run.stdout).backfill).toMatchObject({ windows: 6, completed: 6 });
  });

  it('poison products are rejected into the reject file (exit 3), the rest is written', async () => {
    const server = await inventory({ faults: { poisonEvery: 25 } });
    const dir = tempDir();
    const out = join(dir, 'p.ndjson');
    const run = await runSyncctl(['--json', 'fetch', '--source', 'inventory', '--out', out], {
      env: envFor(server, dir),
    });
    expect(run.code).toBe(3);
    const summary = summaryOf(run.stdout);
    expect(summary.rejects).toBe(10);
    expect(readNdjson(out)).toHaveLength(240);
    const rejects = readFileSync(`${out}.rejects.ndjson`, 'utf8').trim().split('\n');
    expect(rejects).toHaveLength(10);
  });

  it('wrong credentials and a broken WSDL stop at once with a clear message', async () => {
    const server = await inventory();
    const dir = tempDir();
    const out = join(dir, 'x.ndjson');
    const badPassword = await runSyncctl(['fetch', '--source', 'inventory', '--out', out], {
      env: envFor(server, dir, { SYNCCTL_INVENTORY_PASSWORD: 'not-the-password' }),
    });
    expect(badPassword.code).toBe(1);
    expect(badPassword.stderr).toMatch(/--inventory-user|--inventory-password|credentials|authenticat/i);
    expect(badPassword.stderr).not.toContain('not-the-password');
    expect(badPassword.stdout).toMatch(/0 record\(s\)/);
    expect(readNdjson(out)).toEqual([]);

    const badWsdl = await runSyncctl(['fetch', '--source', 'inventory', '--out', out], {
      env: envFor(server, dir, { SYNCCTL_INVENTORY_WSDL: `${new URL(server.url).origin}/nope?wsdl` }),
    });
    expect(badWsdl.code).toBe(1);
    expect(badWsdl.stderr).toMatch(/WSDL/);
    expect(badWsdl.stderr).toMatch(/--inventory-wsdl/);
    expect(badWsdl.stdout).toBe('');
  });

  it('invalid XML that stays invalid stops after the good pages; the rerun continues', async () => {
    const server = await inventory({ faults: { malformed: { from: 4 } } });
    const dir = tempDir();
    const out = join(dir, 'm.ndjson');
    const env = envFor(server, dir);
    const args = [
      '--json',
      'fetch',
      '--source',
      'inventory',
      '--inventory-page-size',
      '50',
      '--inventory-retries',
      '1',
      '--out',
      out,
    ];
    const first = await runSyncctl(args, { env });
    expect(first.code).not.toBe(0);
    const summary = summaryOf(first.stdout);
    expect(summary.status).toBe('failed');
    expect(summary.records).toBe(summary.pages * 50);
    expect(summary.pages).toBeGreaterThanOrEqual(1);
    expect(first.stderr).toMatch(/before it are written and checkpointed/);
    expect(idsOf(readNdjson(out))).toEqual(expectedIds().slice(0, summary.records));

    server.control.setFaults({});
    const second = await runSyncctl(args, { env });
    expect(second.code, second.stderr).toBe(0);
    expect(summaryOf(second.stdout)).toMatchObject({ resumed: true, records: 250 - summary.records });
    expect(idsOf(readNdjson(out))).toEqual(expectedIds());
  });
});
