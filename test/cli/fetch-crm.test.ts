import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedCustomers } from '../../fixtures/data/customers.js';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createTopic, readAll, testBrokers, uniqueName } from '../helpers/kafka.js';
import { duplicates, idsOf, parseNdjson, readCheckpoint, readNdjson, tempDir } from './fetch-helpers.js';

const TOKEN = 'crm-test-token';
const servers: CrmServer[] = [];

afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.close();
});

async function crm(options: CrmServerOptions = {}): Promise<CrmServer> {
  const server = await startCrmServer({ seed: 7, count: 300, products: 50, token: TOKEN, ...options });
  servers.push(server);
  return server;
}

function envFor(server: CrmServer, dir: string, extra: Record<string, string> = {}) {
  return isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_BROKERS: testBrokers(),
    SYNCCTL_STATE: join(dir, 'state.db'),
    ...extra,
  });
}

function expectedIds(count: number, seed = 7): string[] {
  return [...expectedCustomers({ seed, count, products: 50 })].map((c) => c.id);
}

function summaryOf(text: string): FetchSummary {
  const start = text.indexOf('{');
  return JSON.parse(text.slice(start, text.lastIndexOf('}') + 1)) as FetchSummary;
}

describe('syncctl fetch --source crm', () => {
  const STYLE_FLAGS: Record<string, string[]> = {
    cursor: [
      '--crm-records-path',
      'results',
      '--crm-next-path',
      'paging.next.after',
      '--crm-cursor-param',
      'after',
    ],
    'next-url': ['--crm-records-path', 'records', '--crm-next-path', 'nextRecordsUrl'],
    odata: ['--crm-records-path', 'value', '--crm-next-path', '@odata.nextLink'],
    link: ['--crm-records-path', ''],
    offset: ['--crm-records-path', 'data', '--crm-page-param', 'page', '--crm-total-path', 'total'],
  };

  for (const [style, flags] of Object.entries(STYLE_FLAGS)) {
    it(`yields every record exactly once with ${style} pagination, configured by flags`, async () => {
      const server = await crm({ pagination: style as CrmServerOptions['pagination'] });
      const dir = tempDir();
      const out = join(dir, 'customers.ndjson');
      const run = await runSyncctl(
        [
          '--json',
          'fetch',
          '--source',
          'crm',
          '--crm-pagination',
          style,
          ...flags,
          '--crm-page-size',
          '37',
          '--out',
          out,
        ],
        { env: envFor(server, dir) },
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const envelopes = readNdjson(out);
      const ids = idsOf(envelopes);
      expect(duplicates(ids)).toEqual([]);
      expect(ids.sort()).toEqual(expectedIds(300).sort());
      const summary = summaryOf(run.stdout);
      expect(summary).toMatchObject({
        status: 'completed',
        records: 300,
        pages: Math.ceil(300 / 37),
        rejects: 0,
      });
      expect(summary.deletes).toBe(envelopes.filter((e) => e.op === 'delete').length);
      expect(summary.deletes).toBeGreaterThan(0);
    });
  }

  it('is incremental: a second fetch after changes returns only the changed and deleted records', async () => {
    const server = await crm();
    const dir = tempDir();
    const env = envFor(server, dir);
    const first = await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'a.ndjson')], { env });
    expect(first.code).toBe(0);
    const a = readNdjson(join(dir, 'a.ndjson'));
    expect(a).toHaveLength(300);
    const firstKeys = new Set(a.map((e) => e.idempotencyKey));
    const hwBefore = readCheckpoint<{ highWater: string }>(join(dir, 'state.db'), 'fetch:crm')?.highWater;
    expect(hwBefore).toBe(
      a
        .map((e) => e.sourceUpdatedAt as string)
        .sort()
        .at(-1),
    );

    const changed = server.control.mutate({ update: 6, delete: 4 });
    expect(changed.updated).toHaveLength(6);
    expect(changed.deleted).toHaveLength(4);

    const second = await runSyncctl(['--json', 'fetch', '--source', 'crm', '--out', join(dir, 'b.ndjson')], {
      env,
    });
    expect(second.code).toBe(0);
    const b = readNdjson(join(dir, 'b.ndjson'));
    const changedIds = [...changed.updated, ...changed.deleted];
    // Every change arrives, as an upsert or a delete…
    for (const id of changedIds) {
      const latest = b.filter((e) => e.id === id);
      expect(latest, id).toHaveLength(1);
      // An update of an archived customer keeps it archived: still a delete.
      const wasArchived = a.find((e) => e.id === id)?.op === 'delete';
      expect(latest[0]?.op).toBe(changed.deleted.includes(id) || wasArchived ? 'delete' : 'upsert');
    }
    // …new content is only the changes (deleting an already archived customer changes nothing)…
    const fresh = b.filter((e) => !firstKeys.has(e.idempotencyKey));
    for (const e of fresh) expect(changedIds).toContain(e.id);
    expect(fresh.length).toBeGreaterThanOrEqual(changed.updated.length);
    // …and anything else is the inclusive boundary record, re-fetched with an identical key.
    const others = b.filter((e) => !changedIds.includes(e.id));
    expect(others.length).toBeLessThanOrEqual(1);
    for (const e of others) {
      expect(firstKeys.has(e.idempotencyKey)).toBe(true);
      expect(e.sourceUpdatedAt).toBe(hwBefore);
    }
    const summary = summaryOf(second.stdout);
    expect(summary.checkpoint.before).toBe(hwBefore);
    expect(summary.checkpoint.after).toBe(changed.updatedAt);
    expect(summary.deletes).toBe(b.filter((e) => e.op === 'delete').length);
    expect(summary.deletes).toBeGreaterThanOrEqual(4);

    // Nothing changed since: only the boundary records come back, with the keys already seen.
    const third = await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'c.ndjson')], { env });
    expect(third.code).toBe(0);
    const bKeys = new Set(b.map((e) => e.idempotencyKey));
    for (const e of readNdjson(join(dir, 'c.ndjson'))) expect(bKeys.has(e.idempotencyKey)).toBe(true);
  });

  it('--full ignores the checkpoint and moves it when done; a backfill never moves it', async () => {
    const server = await crm();
    const dir = tempDir();
    const env = envFor(server, dir);
    const state = join(dir, 'state.db');
    expect(
      (await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'a.ndjson')], { env })).code,
    ).toBe(0);
    const hw = readCheckpoint<{ highWater: string }>(state, 'fetch:crm')?.highWater;
    const full = await runSyncctl(['fetch', '--source', 'crm', '--full', '--out', join(dir, 'full.ndjson')], {
      env,
    });
    expect(full.code).toBe(0);
    expect(readNdjson(join(dir, 'full.ndjson'))).toHaveLength(300);
    expect(full.stdout).toMatch(/full: completed — 300 record/);

    const changed = server.control.mutate({ update: 2 });
    const backfill = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'crm',
        '--since',
        '2020-01-01',
        '--until',
        '2030-01-01',
        '--window',
        '3',
        '--out',
        join(dir, 'bf.ndjson'),
      ],
      { env },
    );
    expect(backfill.code).toBe(0);
    const bf = readNdjson(join(dir, 'bf.ndjson'));
    expect(idsOf(bf).sort()).toEqual(expectedIds(300).sort());
    const summary = summaryOf(backfill.stdout);
    expect(summary.backfill).toMatchObject({ windows: 3, completed: 3, alreadyDone: 0 });
    // The backfill saw the changes, but the incremental mark stays where the last incremental/full run left it.
    expect(readCheckpoint<{ highWater: string }>(state, 'fetch:crm')?.highWater).toBe(hw);
    const incremental = await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'inc.ndjson')], {
      env,
    });
    expect(incremental.code).toBe(0);
    expect(readNdjson(join(dir, 'inc.ndjson')).filter((e) => changed.updated.includes(e.id))).toHaveLength(2);
  });

  it('writes NDJSON on stdout and then the summary on stderr, also with --json', async () => {
    const server = await crm({ count: 120 });
    const dir = tempDir();
    const run = await runSyncctl(['--json', 'fetch', '--source', 'crm'], { env: envFor(server, dir) });
    expect(run.code).toBe(0);
    const envelopes = parseNdjson(run.stdout);
    expect(envelopes).toHaveLength(120);
    expect(summaryOf(run.stderr)).toMatchObject({ records: 120, output: { kind: 'stdout' } });
  });

  it('takes every setting from SYNCCTL_* variables', async () => {
    const server = await crm({ count: 90, pagination: 'offset' });
    const dir = tempDir();
    const out = join(dir, 'env.ndjson');
    const run = await runSyncctl(['fetch'], {
      env: envFor(server, dir, {
        SYNCCTL_SOURCE: 'crm',
        SYNCCTL_OUT: out,
        SYNCCTL_CRM_PAGINATION: 'offset',
        SYNCCTL_CRM_PAGE_SIZE: '20',
        SYNCCTL_JSON: 'true',
      }),
    });
    expect(run.code).toBe(0);
    expect(readNdjson(out)).toHaveLength(90);
    expect(summaryOf(run.stdout)).toMatchObject({ pages: 5, records: 90 });
  });

  it('takes settings from a config profile, below flags', async () => {
    const server = await crm({ count: 70 });
    const dir = tempDir();
    const env = envFor(server, dir, { SYNCCTL_CRM_URL: '', SYNCCTL_CRM_TOKEN: '' });
    const out = join(dir, 'profile.ndjson');
    for (const [key, value] of [
      ['source', 'crm'],
      ['crm-url', server.url],
      ['crm-token', TOKEN],
      ['crm-page-size', '30'],
      ['out', join(dir, 'overridden.ndjson')],
    ]) {
      const set = await runSyncctl(['--profile', 'ops', 'config', 'set', key as string, value as string], {
        env,
      });
      expect(set.code, set.stderr).toBe(0);
    }
    const run = await runSyncctl(['--profile', 'ops', '--json', 'fetch', '--out', out], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(readNdjson(out)).toHaveLength(70);
    expect(summaryOf(run.stdout)).toMatchObject({ pages: 3, records: 70 });
  });

  describe('permanent failures stop at once, say what to fix and claim nothing', () => {
    const cases: {
      name: string;
      server: CrmServerOptions;
      args: string[];
      env?: Record<string, string>;
      message: RegExp;
    }[] = [
      {
        name: 'a wrong token (401)',
        server: {},
        args: [],
        env: { SYNCCTL_CRM_TOKEN: 'wrong-token' },
        message: /401[\s\S]*--crm-token/,
      },
      {
        name: 'a token without access (403)',
        server: { forbiddenTokens: ['read-nothing'] },
        args: [],
        env: { SYNCCTL_CRM_TOKEN: 'read-nothing' },
        message: /403/,
      },
      {
        name: 'a wrong path (404)',
        server: {},
        args: ['--crm-path', '/v2/clients'],
        message: /404[\s\S]*--crm-path/,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const server = await crm(c.server);
        const dir = tempDir();
        const out = join(dir, 'x.ndjson');
        const run = await runSyncctl(['--json', 'fetch', '--source', 'crm', '--out', out, ...c.args], {
          env: envFor(server, dir, c.env ?? {}),
        });
        expect(run.code).toBe(1);
        expect(run.stderr).toMatch(c.message);
        expect(run.stderr).not.toContain('wrong-token');
        expect(run.stdout).not.toContain('wrong-token');
        const summary = summaryOf(run.stdout);
        expect(summary).toMatchObject({ status: 'failed', records: 0, pages: 0 });
        expect(summary.error?.code).toBe('E_SOURCE_PERMANENT');
        expect(readNdjson(out)).toEqual([]);
        expect(
          readCheckpoint<{ highWater: string | null }>(join(dir, 'state.db'), 'fetch:crm')?.highWater ?? null,
        ).toBeNull();
        // One request: a permanent failure is not retried.
        expect(server.control.stats().requests).toBe(1);
      });
    }

    it('an unreachable CRM is a temporary failure (exit 75)', async () => {
      const server = await crm();
      const dir = tempDir();
      const url = server.url;
      await servers.pop()?.close();
      const run = await runSyncctl(
        ['fetch', '--source', 'crm', '--crm-retries', '0', '--out', join(dir, 'x.ndjson')],
        {
          env: envFor({ url } as CrmServer, dir),
        },
      );
      expect(run.code).toBe(75);
      expect(run.stderr).toMatch(/cannot fetch CRM page 1/);
      expect(run.stdout).toMatch(/0 record\(s\)/);
    });
  });

  it('a page that stays malformed stops the run; the pages before it are kept and a rerun continues', async () => {
    const server = await crm({ faults: { malformed: { from: 4 } } });
    const dir = tempDir();
    const out = join(dir, 'customers.ndjson');
    const env = envFor(server, dir);
    const args = [
      '--json',
      'fetch',
      '--source',
      'crm',
      '--crm-page-size',
      '50',
      '--crm-retries',
      '1',
      '--out',
      out,
    ];
    const first = await runSyncctl(args, { env });
    expect(first.code).toBe(75);
    expect(first.stderr).toMatch(/not valid JSON/);
    expect(first.stderr).toMatch(
      /after page 3; 3 page\(s\) with 150 record\(s\) before it are written and checkpointed/,
    );
    expect(first.stderr).toMatch(/rerun `syncctl --json fetch --source crm/);
    const summary = summaryOf(first.stdout);
    expect(summary).toMatchObject({ status: 'failed', pages: 3, records: 150 });
    expect(summary.error).toMatchObject({ code: 'E_SOURCE_MALFORMED' });
    expect(summary.stoppedAt).toMatchObject({ durablePages: 3 });
    const kept = readNdjson(out);
    expect(idsOf(kept)).toEqual(expectedIds(300).slice(0, 150));
    const run = readCheckpoint<{ run: { pages: number; records: number } }>(
      join(dir, 'state.db'),
      'fetch:crm',
    )?.run;
    expect(run).toMatchObject({ pages: 3, records: 150 });

    server.control.setFaults({});
    const second = await runSyncctl(args, { env });
    expect(second.code).toBe(0);
    expect(summaryOf(second.stdout)).toMatchObject({ status: 'completed', resumed: true, records: 150 });
    const all = idsOf(readNdjson(out));
    expect(duplicates(all)).toEqual([]);
    expect(all).toEqual(expectedIds(300));
  });

  it('a malformed page with --publish: the pages before it are in Kafka, the rerun adds the rest', async () => {
    const server = await crm({ count: 200, faults: { malformed: { from: 3 } } });
    const dir = tempDir();
    const topic = uniqueName('fetch-malformed');
    await createTopic(topic, 3);
    const env = envFor(server, dir);
    const args = [
      'fetch',
      '--source',
      'crm',
      '--publish',
      '--topic',
      topic,
      '--crm-page-size',
      '40',
      '--crm-retries',
      '0',
    ];
    const first = await runSyncctl(args, { env });
    expect(first.code).toBe(75);
    expect(first.stdout).toMatch(/failed — 80 record\(s\)/);
    expect((await readAll(topic)).map((r) => r.key).sort()).toEqual(expectedIds(200).slice(0, 80).sort());
    server.control.setFaults({});
    const second = await runSyncctl(args, { env });
    expect(second.code).toBe(0);
    const records = await readAll(topic);
    expect(records.map((r) => r.key).sort()).toEqual(expectedIds(200).sort());
  });

  it('deletes are published as tombstone-friendly records keyed by id', async () => {
    const server = await crm({ count: 150 });
    const dir = tempDir();
    const topic = uniqueName('fetch-deletes');
    await createTopic(topic, 3);
    const run = await runSyncctl(['fetch', '--source', 'crm', '--publish', '--topic', topic], {
      env: envFor(server, dir),
    });
    expect(run.code).toBe(0);
    const records = await readAll(topic);
    expect(records).toHaveLength(150);
    const deletes = records.filter((r) => r.headers['syncctl-op'] === 'delete');
    expect(deletes.length).toBeGreaterThan(0);
    for (const r of deletes) {
      const envelope = JSON.parse(r.value as string) as { id: string; op: string; data: unknown };
      expect(r.key).toBe(envelope.id);
      expect(envelope).toMatchObject({ op: 'delete', data: null });
    }
  });

  it('rejected records go to the reject file and make the exit code 3', async () => {
    const server = await crm({ count: 100 });
    const dir = tempDir();
    const out = join(dir, 'c.ndjson');
    // Only some customers have a company: the others cannot get an id under this mapping.
    const run = await runSyncctl(
      ['--json', 'fetch', '--source', 'crm', '--crm-id-field', 'company', '--out', out],
      {
        env: envFor(server, dir),
      },
    );
    expect(run.code).toBe(3);
    const summary = summaryOf(run.stdout);
    const rejectsFile = `${out}.rejects.ndjson`;
    expect(summary.rejectsFile).toBe(rejectsFile);
    expect(existsSync(rejectsFile)).toBe(true);
    const rejects = readFileSync(rejectsFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rejects.length).toBe(summary.rejects);
    expect(rejects.length).toBeGreaterThan(0);
    expect(rejects.length + readNdjson(out).length).toBe(100);
    expect(rejects[0]).toMatchObject({ source: 'crm', page: 1, reason: expect.stringMatching(/no id/) });
    expect(run.stderr).toMatch(/rejected/);
  });

  it('rejects bad flag combinations as usage errors', async () => {
    const server = await crm({ count: 10 });
    const dir = tempDir();
    const env = envFor(server, dir);
    for (const args of [
      ['--publish', '--out', 'x'],
      ['--full', '--since', '2024-01-01'],
      ['--until', '2024-01-01'],
      ['--since', 'yesterday'],
      ['--since', '2024-01-01', '--window', 'often'],
    ]) {
      const run = await runSyncctl(['fetch', '--source', 'crm', ...args], { env });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
    }
    const missing = await runSyncctl(['fetch'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--source is required/);
  });

  it('--help shows the flags and examples', async () => {
    const run = await runSyncctl(['fetch', '--help']);
    expect(run.code).toBe(0);
    for (const text of [
      '--since',
      '--window',
      '--concurrency',
      '--resume',
      '--crm-pagination',
      'Examples:',
    ]) {
      expect(run.stdout).toContain(text);
    }
  });
});
