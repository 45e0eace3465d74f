/**
 * `syncctl probe` against the fixture CRM and Inventory: one page, raw next to mapped, the warnings
 * that make the exit code 3, and nothing written (no state store, no second request).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { startInventoryServer } from '../../fixtures/inventory/server.js';
import type { ProbeReport } from '../../src/stages/probe.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const TOKEN = 'probe-test-token';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function crm(options: CrmServerOptions = {}): Promise<CrmServer> {
  const server = await startCrmServer({ seed: 7, count: 60, products: 20, token: TOKEN, ...options });
  closers.push(() => server.close());
  return server;
}

function crmEnv(server: CrmServer, dir = tempDir('syncctl-probe-')): Record<string, string | undefined> {
  return isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_STATE: join(dir, 'state.db'),
  });
}

async function requests(server: CrmServer): Promise<number> {
  const stats = (await (await fetch(`${server.url}/_control/stats`)).json()) as { requests: number };
  return stats.requests;
}

async function probeJson(args: string[], env: Record<string, string | undefined>) {
  const run = await runSyncctl(['--json', 'probe', ...args], { env });
  return { run, report: JSON.parse(run.stdout) as ProbeReport };
}

const codes = (r: ProbeReport) => r.warnings.map((w) => w.code).sort();

describe('syncctl probe', () => {
  it('shows the first page raw next to mapped, requests one page and writes no state', async () => {
    const server = await crm();
    const dir = tempDir('syncctl-probe-');
    const env = { ...crmEnv(server, dir), SYNCCTL_CRM_PAGE_SIZE: '25' };
    const { run, report } = await probeJson(['--source', 'crm', '--limit', '4'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(report.warnings).toEqual([]);
    expect(report.pageRecords).toBe(25);
    expect(report.morePages).toBe(true);
    const expected = [...server.control.store.records()].slice(0, 4);
    expect(report.records.map((r) => r.index)).toEqual([1, 2, 3, 4]);
    for (const [i, c] of expected.entries()) {
      const r = report.records[i]!;
      expect(r.raw).toMatchObject({ id: c.id, updatedAt: c.updatedAt });
      expect(r.mapped).toMatchObject({ id: c.id, updatedAt: c.updatedAt, deleted: c.archived });
      expect(r.mapped?.productIds).toBeUndefined();
    }
    expect(report.notes.map((n) => n.code)).toContain('no-product-refs');
    expect(await requests(server)).toBe(1);
    expect(existsSync(join(dir, 'state.db'))).toBe(false);
  });

  it('warns about references that are one delimited string, and not once they are split', async () => {
    const server = await crm({ shape: { refs: 'delimited', deletes: 'status' } });
    const env = crmEnv(server);
    const unsplit = await probeJson(
      ['--source', 'crm', '--crm-mapping', '{"productIds": "Interests__c"}'],
      env,
    );
    expect(unsplit.run.code).toBe(3);
    expect(codes(unsplit.report)).toEqual(['delimited-refs']);
    expect(unsplit.report.warnings[0]?.message).toMatch(/\$split/);

    const mapping = JSON.stringify({
      productIds: '$split(Interests__c, ";")',
      deleted: 'status in ["deleted", "archived"]',
    });
    const split = await probeJson(['--source', 'crm', '--crm-mapping', mapping], env);
    expect(split.run.code).toBe(0);
    expect(split.report.warnings).toEqual([]);
    const expected = [...server.control.store.records()].slice(0, 10);
    expect(split.report.records.map((r) => r.mapped?.productIds)).toEqual(
      expected.map((c) => (c.archived ? [] : c.productIds)),
    );
    expect(split.report.records.map((r) => r.mapped?.deleted)).toEqual(expected.map((c) => c.archived));
  });

  it('warns about missing and repeated ids, equal and future times, every record deleted', async () => {
    const server = await crm();
    const env = crmEnv(server);
    const noId = await probeJson(['--source', 'crm', '--crm-id-field', 'customerNumber'], env);
    expect(noId.run.code).toBe(3);
    expect(codes(noId.report)).toEqual(['missing-id']);
    // Every record of the page is a reject, and every reject is shown whatever the limit.
    expect(noId.report.records).toHaveLength(noId.report.pageRecords);
    expect(noId.report.records[0]?.reject?.reason).toMatch(/has no id in "customerNumber"/);

    const mapping = JSON.stringify({ id: 'country', updatedAt: '"2999-01-01T00:00:00Z"', deleted: 'true' });
    const odd = await probeJson(['--source', 'crm', '--crm-mapping', mapping], env);
    expect(odd.run.code).toBe(3);
    expect(codes(odd.report)).toEqual(['all-deleted', 'equal-timestamps', 'future-timestamp', 'repeated-id']);

    const badTime = await probeJson(['--source', 'crm', '--crm-updated-at-field', 'email'], env);
    expect(codes(badTime.report)).toEqual(['bad-timestamp']);
  });

  it('prints a table that -o plain makes tab-separated, warnings after it', async () => {
    const server = await crm({ shape: { refs: 'delimited' } });
    const env = crmEnv(server);
    const run = await runSyncctl(
      [
        '-o',
        'plain',
        'probe',
        '--source',
        'crm',
        '--limit',
        '3',
        '--crm-mapping',
        '{"productIds": "Interests__c"}',
      ],
      { env },
    );
    expect(run.code).toBe(3);
    const lines = run.stdout.trim().split('\n');
    expect(lines[1]).toBe(
      ['#', 'id', 'updatedAt', 'version', 'deleted', 'productIds', 'data', 'raw'].join('\t'),
    );
    const first = [...server.control.store.records()][0]!;
    expect(lines[2]?.split('\t').slice(0, 3)).toEqual(['1', first.id, first.updatedAt]);
    expect(run.stdout).toMatch(/^warning: .*delimited string/m);
  });

  it('probes the Inventory through its SOAP mapping', async () => {
    const server = await startInventoryServer({ seed: 3, count: 30, user: 'u', password: 'p' });
    closers.push(() => server.close());
    const dir = tempDir('syncctl-probe-');
    const env = isolatedEnv({
      SYNCCTL_INVENTORY_WSDL: server.wsdlUrl,
      SYNCCTL_INVENTORY_USER: 'u',
      SYNCCTL_INVENTORY_PASSWORD: 'p',
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const { run, report } = await probeJson(['--source', 'inventory', '--limit', '3'], env);
    expect(run.stderr).toBe('');
    expect([0, 3]).toContain(run.code);
    expect(report.records.map((r) => r.mapped?.id)).toEqual(['P000001', 'P000002', 'P000003']);
    expect(report.records[0]?.raw).toMatchObject({ id: 'P000001' });
    expect(existsSync(join(dir, 'state.db'))).toBe(false);
  });

  it('needs --source', async () => {
    const run = await runSyncctl(['probe'], { env: isolatedEnv() });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--source is required/);
  });
});
