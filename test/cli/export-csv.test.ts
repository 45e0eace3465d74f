import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAnalyticsServer, type AnalyticsServer } from '../../fixtures/analytics/server.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor } from '../helpers/cli.js';
import { openTestStore, seed, trickyItems } from '../helpers/export-data.js';
import { tempDir } from '../helpers/temp.js';

const TOKEN = 'export-cli-test-token';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let statePath: string;
beforeAll(async () => {
  const store = await openTestStore('sqlite');
  await seed(store.db, trickyItems());
  statePath = store.url;
  await store.close();
});

const env = (extra: Record<string, string> = {}) => isolatedEnv({ SYNCCTL_STATE: statePath, ...extra });

describe('syncctl export-csv', () => {
  it('writes CSV to stdout with the summary on stderr', async () => {
    const run = await runSyncctl(['export-csv', '--columns', 'customerId,customer.name', '--explode'], {
      env: env(),
    });
    expect(run.code).toBe(0);
    expect(run.stdout.startsWith('customerId,customer.name\r\nC01,"Zoë García, Jr."\r\n')).toBe(true);
    expect(run.stdout).toContain("C04,'=1+1\r\n");
    expect(run.stderr).toMatch(/exported 13 row\(s\) of the unified view \(exploded\)/);
  });

  it('--out with --json prints the summary; --no-formula-escape and SYNCCTL_FORMULA_ESCAPE turn escaping off', async () => {
    const dir = tempDir('syncctl-export-cli-');
    const out = join(dir, 'c.csv');
    const run = await runSyncctl(
      [
        'export-csv',
        '--entity',
        'customers',
        '--columns',
        'customerId,customer.name',
        '--out',
        out,
        '--json',
        '--no-formula-escape',
        '--bom',
      ],
      { env: env() },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ entity: 'customers', rows: 9, out });
    const csv = readFileSync(out, 'utf8');
    expect(csv.startsWith('\ufeffcustomerId,customer.name\r\n')).toBe(true);
    expect(csv).toContain('C04,=1+1\r\n');
    const viaEnv = await runSyncctl(['export-csv', '--entity', 'customers', '--columns', 'customer.name'], {
      env: env({ SYNCCTL_FORMULA_ESCAPE: 'false' }),
    });
    expect(viaEnv.stdout).toContain('\r\n=1+1\r\n');
  });

  it('--upload sends the export to Analytics once', async () => {
    const server: AnalyticsServer = await startAnalyticsServer({
      token: TOKEN,
      faults: { serverError: { first: 1 } },
    });
    cleanups.push(() => server.close());
    const args = [
      'export-csv',
      '--upload',
      '--analytics-url',
      server.url,
      '--analytics-token',
      TOKEN,
      '--analytics-backoff-ms',
      '10',
    ];
    const first = await runSyncctl(args, { env: env() });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /exported 9 row\(s\)[\s\S]*uploaded: Analytics upload 1, 9 row\(s\), retries 1/,
    );
    const again = await runSyncctl(args, { env: env() });
    expect(again.stdout).toMatch(/already uploaded \(acknowledged, not stored again\): Analytics upload 1/);
    expect(server.store.uploads).toHaveLength(1);
  });

  it('usage errors exit 2 and leave --out alone', async () => {
    const dir = tempDir('syncctl-export-cli-');
    const out = join(dir, 'c.csv');
    writeFileSync(out, 'old');
    const unknown = await runSyncctl(['export-csv', '--columns', 'customerId,nope', '--out', out], {
      env: env(),
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown column "nope"/);
    expect(readFileSync(out, 'utf8')).toBe('old');
    const json = await runSyncctl(['export-csv', '--json'], { env: env() });
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/--json needs --out or --upload/);
    const since = await runSyncctl(['export-csv', '--since', 'yesterday-ish'], { env: env() });
    expect(since.code).toBe(2);
    const explode = await runSyncctl(['export-csv', '--entity', 'products', '--explode'], { env: env() });
    expect(explode.code).toBe(2);
  });

  it('SIGTERM mid-export leaves no --out and no temporary file (exit 75)', async () => {
    const dir = tempDir('syncctl-export-cli-');
    const state = join(dir, 'big.db');
    // @ts-expect-error: a plain .mjs bench helper without types
    const { seedExportState } = (await import('../../bench/export-seed.mjs')) as {
      seedExportState: (path: string, size: number) => Promise<number>;
    };
    await seedExportState(state, 40_000);
    const out = join(dir, 'view.csv');
    const child = startSyncctl(['export-csv', '--out', out], isolatedEnv({ SYNCCTL_STATE: state }));
    await waitFor('the temporary file', () => readdirSync(dir).some((f) => f.endsWith('.tmp')), 60_000);
    child.process.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(75);
    expect(child.stderr()).toMatch(/stopped by a signal/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
