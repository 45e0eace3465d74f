/**
 * Mappings through the CLI: from a profile, a failing expression's records in the reject file with
 * the expression and the error, a broken expression refused before any request, and an Inventory
 * service without a "changed until" filter fetched incrementally.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { readCheckpoint, readNdjson, tempDir } from './fetch-helpers.js';

const TOKEN = 'mapping-test-token';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function crm(): Promise<CrmServer> {
  const server = await startCrmServer({
    seed: 5,
    count: 60,
    products: 20,
    token: TOKEN,
    shape: { refs: 'delimited', deletes: 'status' },
  });
  closers.push(() => server.close());
  return server;
}

function crmEnv(server: CrmServer, dir: string): Record<string, string | undefined> {
  return isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_STATE: join(dir, 'state.db'),
  });
}

describe('fetch with a mapping', () => {
  it('takes the mapping from the profile and puts the mapped references on the envelopes', async () => {
    const server = await crm();
    const dir = tempDir();
    const env = crmEnv(server, dir);
    const mapping = JSON.stringify({
      deleted: 'status in ["deleted", "archived"]',
      productIds: '$split(Interests__c, ";")',
    });
    expect((await runSyncctl(['config', 'set', 'crmMapping', mapping], { env })).code).toBe(0);
    const out = join(dir, 'c.ndjson');
    const run = await runSyncctl(['fetch', '--source', 'crm', '--out', out], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const envelopes = readNdjson(out);
    const expected = [...server.control.store.records()];
    expect(envelopes.map((e) => e.id).sort()).toEqual(expected.map((c) => c.id).sort());
    for (const c of expected) {
      const e = envelopes.find((x) => x.id === c.id)!;
      expect(e.op).toBe(c.archived ? 'delete' : 'upsert');
      expect(e.productIds).toEqual(c.archived ? [] : c.productIds);
    }
  });

  it('a record the mapping cannot read goes to the reject file with the expression and the error', async () => {
    const server = await crm();
    const dir = tempDir();
    const out = join(dir, 'c.ndjson');
    // "active" is no boolean: every live customer is rejected, the deleted ones map.
    const run = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'crm',
        '--out',
        out,
        '--crm-mapping',
        '{"deleted": "status = \\"active\\" ? status : true"}',
      ],
      { env: crmEnv(server, dir) },
    );
    expect(run.code).toBe(3);
    const rejects = readFileSync(`${out}.rejects.ndjson`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const live = [...server.control.store.records()].filter((c) => !c.archived);
    expect(rejects.length).toBe(live.length);
    expect(readNdjson(out).length).toBe(60 - live.length);
    expect(rejects[0]).toMatchObject({
      source: 'crm',
      reason: expect.stringContaining('has no true/false delete flag in "status = "active" ? status : true"'),
      mapping: {
        field: 'deleted',
        expression: 'status = "active" ? status : true',
        error: expect.stringMatching(/got "active"/),
      },
    });
    expect(JSON.parse(rejects[0]!.raw as string)).toHaveProperty('status', 'active');
  });

  it('refuses an expression that does not compile before any request, naming the field', async () => {
    const server = await crm();
    const dir = tempDir();
    const file = join(dir, 'mapping.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, JSON.stringify({ productIds: '$split(Interests__c, ";"' }));
    const run = await runSyncctl(
      ['fetch', '--source', 'crm', '--out', join(dir, 'c.ndjson'), '--crm-mapping', file],
      {
        env: crmEnv(server, dir),
      },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /CRM mapping field productIds: "\$split\(Interests__c, ";"" is not a valid JSONata expression/,
    );
    expect(server.control.stats().requests).toBe(0);
  });
});

describe('an Inventory service without a "changed until" filter', () => {
  it('is fetched in full and then incrementally, up to now, with the high-water mark from the data', async () => {
    const inventory: InventoryServer = await startInventoryServer({ seed: 3, count: 30, dialect: 'catalog' });
    closers.push(() => inventory.close());
    const dir = tempDir();
    const env = isolatedEnv({
      SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
      SYNCCTL_STATE: join(dir, 'state.db'),
      SYNCCTL_INVENTORY_MAPPING: JSON.stringify({
        id: 'ItemCode',
        updatedAt: 'LastChanged',
        version: 'Revision',
        deleted: 'Status = "DISCONTINUED"',
      }),
    });
    const flags = [
      '--inventory-operation',
      'GetItems',
      '--inventory-records-path',
      'Items.Item',
      '--inventory-next-token-path',
      'NextCursor',
      '--inventory-token-param',
      'Cursor',
      '--inventory-page-size-param',
      'MaxResults',
      '--inventory-since-param',
      'ChangedSince',
      '--inventory-until-param',
      '',
    ];
    const first = join(dir, 'p1.ndjson');
    const full = await runSyncctl(['fetch', '--source', 'inventory', '--full', '--out', first, ...flags], {
      env,
    });
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    expect(readNdjson(first).length).toBe(30);
    const newest = [...inventory.control.store.records()]
      .map((p) => p.modifiedAt)
      .sort()
      .at(-1);
    expect(readCheckpoint<{ highWater: string }>(join(dir, 'state.db'), 'fetch:inventory')?.highWater).toBe(
      newest,
    );

    const changed = inventory.control.mutate({ update: 2, discontinue: 1 });
    const second = join(dir, 'p2.ndjson');
    const incremental = await runSyncctl(['fetch', '--source', 'inventory', '--out', second, ...flags], {
      env,
    });
    expect(incremental.code).toBe(0);
    const ids = readNdjson(second).map((e) => e.id);
    for (const id of [...changed.updated, ...changed.discontinued]) expect(ids).toContain(id);
    expect(readNdjson(second).find((e) => e.id === changed.discontinued[0])?.op).toBe('delete');
  });

  it('without a since filter an incremental run says to fetch in full', async () => {
    const inventory = await startInventoryServer({ seed: 3, count: 5 });
    closers.push(() => inventory.close());
    const dir = tempDir();
    const env = isolatedEnv({
      SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const run = await runSyncctl(
      [
        'fetch',
        '--source',
        'inventory',
        '--since',
        '2020-01-01T00:00:00Z',
        '--until',
        '2030-01-01T00:00:00Z',
        '--out',
        join(dir, 'p.ndjson'),
        '--inventory-since-param',
        '',
      ],
      { env },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/without a modified-since filter/);
    expect(run.stderr).toMatch(/--full/);
  });
});
