/**
 * Each CRM preset end to end against the fixture CRM serving that vendor's shape (pagination style
 * and field names): fetch --full → NDJSON with every customer once, deletes as deletes, references
 * split by the operator's mapping. What the fixture cannot be (its path, its filter names) is set by
 * flags, which beat the preset.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { readNdjson } from './fetch-helpers.js';

const TOKEN = 'preset-test-token';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

interface Case {
  preset: string;
  server: Pick<CrmServerOptions, 'pagination' | 'shape'>;
  /** Flags for what only the fixture differs in, and the operator's reference mapping. */
  flags: string[];
}

const CASES: Case[] = [
  {
    preset: 'salesforce',
    server: { pagination: 'next-url', shape: { names: 'salesforce', refs: 'delimited' } },
    flags: ['--crm-mapping', '{"productIds": "$split(Interests__c, \\";\\")"}'],
  },
  {
    preset: 'hubspot',
    server: { pagination: 'cursor', shape: { names: 'hubspot', refs: 'delimited' } },
    flags: [
      '--crm-path',
      '/v1/customers',
      '--crm-page-size',
      '20',
      '--crm-mapping',
      '{"productIds": "$split(properties.Interests__c, \\";\\")"}',
    ],
  },
  {
    preset: 'dynamics',
    server: { pagination: 'odata', shape: { names: 'dynamics', refs: 'objects' } },
    flags: ['--crm-path', '/v1/customers', '--crm-mapping', '{"productIds": "products.sku"}'],
  },
  {
    preset: 'link-header',
    server: { pagination: 'link' },
    flags: ['--crm-mapping', '{"productIds": "productIds"}'],
  },
];

describe('fetch with a CRM preset', () => {
  it.each(CASES)(
    '$preset: every customer once, deletes and references mapped',
    async ({ preset, server, flags }) => {
      // A page size the client does not send (Salesforce, Dynamics) or the fixture does not know
      // (per_page) falls back to the server's: 20, so there are several pages.
      const crm = await startCrmServer({
        seed: 11,
        count: 90,
        products: 30,
        token: TOKEN,
        pageSize: 20,
        ...server,
      });
      closers.push(() => crm.close());
      const dir = tempDir('syncctl-preset-');
      const env = isolatedEnv({
        SYNCCTL_CRM_URL: crm.url,
        SYNCCTL_CRM_TOKEN: TOKEN,
        SYNCCTL_STATE: join(dir, 'state.db'),
      });
      const out = join(dir, 'c.ndjson');
      const run = await runSyncctl(
        ['--json', 'fetch', '--source', 'crm', '--full', '--out', out, '--crm-preset', preset, ...flags],
        { env },
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed', rejects: 0 });
      expect((JSON.parse(run.stdout) as { pages: number }).pages).toBeGreaterThan(1);
      const envelopes = readNdjson(out);
      const expected = [...crm.control.store.records()];
      expect(envelopes.map((e) => e.id)).toEqual(expected.map((c) => c.id));
      expect(expected.some((c) => c.archived)).toBe(true);
      for (const [i, c] of expected.entries()) {
        const e = envelopes[i]!;
        expect(e.op, c.id).toBe(c.archived ? 'delete' : 'upsert');
        expect(e.productIds, c.id).toEqual(c.archived ? [] : c.productIds);
        expect(Date.parse(String(e.sourceUpdatedAt))).toBe(Date.parse(c.updatedAt));
      }
    },
  );

  it('dynamics: an incremental run filters by $filter from the preset and fetches only the changes', async () => {
    const crm = await startCrmServer({
      seed: 12,
      count: 90,
      products: 30,
      token: TOKEN,
      pageSize: 20,
      pagination: 'odata',
      shape: { names: 'dynamics' },
    });
    closers.push(() => crm.close());
    const dir = tempDir('syncctl-preset-filter-');
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: crm.url,
      SYNCCTL_CRM_TOKEN: TOKEN,
      SYNCCTL_STATE: join(dir, 'state.db'),
      SYNCCTL_CRM_PRESET: 'dynamics',
      SYNCCTL_CRM_PATH: '/v1/customers',
    });
    const fetch = (out: string, extra: string[] = []) =>
      runSyncctl(['--json', 'fetch', '--source', 'crm', '--out', join(dir, out), ...extra], { env });
    const first = await fetch('a.ndjson', ['--full']);
    expect(first.stderr).toBe('');
    expect(readNdjson(join(dir, 'a.ndjson'))).toHaveLength(90);

    const changed = crm.control.mutate({ update: 3 });
    const second = await fetch('b.ndjson');
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const ids = readNdjson(join(dir, 'b.ndjson')).map((e) => e.id);
    // The fixture answers an unfiltered list with all 90 and a malformed $filter with a 400.
    for (const id of changed.updated) expect(ids).toContain(id);
    expect(ids.length).toBeLessThanOrEqual(changed.updated.length + 1);
  });

  it('an operator since-parameter beats the preset filter; a template without {since} is refused', async () => {
    const crm = await startCrmServer({
      seed: 13,
      count: 40,
      products: 10,
      token: TOKEN,
      pagination: 'odata',
    });
    closers.push(() => crm.close());
    const dir = tempDir('syncctl-preset-filter-');
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: crm.url,
      SYNCCTL_CRM_TOKEN: TOKEN,
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const times = [...crm.control.store.records()].map((c) => Date.parse(c.updatedAt));
    const window = [
      '--since',
      new Date(Math.min(...times)).toISOString(),
      '--until',
      new Date(Math.max(...times) + 1000).toISOString(),
      '--window',
      '365d',
    ];
    const own = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'crm',
        '--out',
        join(dir, 'a.ndjson'),
        ...window,
        '--crm-preset',
        'dynamics',
        '--crm-path',
        '/v1/customers',
        '--crm-id-field',
        'id',
        '--crm-updated-at-field',
        'updatedAt',
        '--crm-since-param',
        'updatedSince',
        '--crm-until-param',
        'updatedUntil',
      ],
      { env },
    );
    expect(own.stderr).toBe('');
    expect(readNdjson(join(dir, 'a.ndjson'))).toHaveLength(40);

    const requestsBefore = crm.control.stats().requests;
    const bad = await runSyncctl(
      [
        'fetch',
        '--source',
        'crm',
        '--out',
        join(dir, 'b.ndjson'),
        ...window,
        '--crm-filter-query',
        'updatedUntil={until}',
      ],
      { env },
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/filterQuery must contain \{since\}.*--crm-filter-query/s);
    expect(crm.control.stats().requests).toBe(requestsBefore);
  });

  it('a probe with the preset shows the mapped page without warnings', async () => {
    const crm = await startCrmServer({
      seed: 11,
      count: 90,
      products: 30,
      token: TOKEN,
      pagination: 'odata',
      shape: { names: 'dynamics' },
    });
    closers.push(() => crm.close());
    const env = isolatedEnv({ SYNCCTL_CRM_URL: crm.url, SYNCCTL_CRM_TOKEN: TOKEN });
    const run = await runSyncctl(
      ['--json', 'probe', '--source', 'crm', '--crm-preset', 'dynamics', '--crm-path', '/v1/customers'],
      { env },
    );
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as {
      records: { raw: { contactid: string }; mapped: { id: string } }[];
    };
    expect(report.records.map((r) => r.mapped.id)).toEqual(report.records.map((r) => r.raw.contactid));
  });
});
