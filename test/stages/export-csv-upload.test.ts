import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnalyticsConfig } from '../../src/connectors/analytics-sink.js';
import { SinkTransientError } from '../../src/errors.js';
import { exportCsv } from '../../src/stages/export-csv.js';
import {
  startAnalyticsServer,
  type AnalyticsServer,
  type AnalyticsServerOptions,
} from '../../fixtures/analytics/server.js';
import { customerItem, openTestStore, seed, trickyItems } from '../helpers/export-data.js';
import { tempDir } from '../helpers/temp.js';

const TOKEN = 'export-upload-test-token';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(serverOptions: AnalyticsServerOptions = {}) {
  const server: AnalyticsServer = await startAnalyticsServer({ token: TOKEN, ...serverOptions });
  cleanups.push(() => server.close());
  const store = await openTestStore('sqlite');
  cleanups.push(store.close);
  await seed(store.db, trickyItems());
  const config: AnalyticsConfig = {
    url: server.url,
    token: TOKEN,
    timeoutMs: 2_000,
    retries: 4,
    batchSize: 100,
    backoffMs: 10,
    backoffLimitMs: 100,
    maxRetryAfterMs: 5_000,
  };
  return { server, db: store.db, config };
}

const uploadRequests = (server: AnalyticsServer) => server.stats().filter((s) => s.endpoint === 'upload');

describe('export-csv --upload', () => {
  it('retries 5xx answers and stores the export once, byte for byte', async () => {
    const { server, db, config } = await setup({ faults: { serverError: { first: 2 } } });
    const out = join(tempDir('syncctl-export-'), 'view.csv');
    const summary = await exportCsv({ db, entity: 'unified', out, upload: config });
    expect(summary.upload).toMatchObject({ uploadId: 1, rows: 9, replayed: false, retries: 2 });
    expect(summary.upload?.idempotencyKey).toBe(`export-csv-${summary.sha256}`);
    expect(server.store.uploads).toHaveLength(1);
    expect(server.store.uploads[0]?.csv).toBe(readFileSync(out, 'utf8'));
    expect(uploadRequests(server)).toHaveLength(3);
  });

  it('a lost answer (stored, then the connection dropped) is retried and acknowledged, not stored twice', async () => {
    const { server, db, config } = await setup({ faults: { storeThenDrop: { first: 1 } } });
    const summary = await exportCsv({ db, entity: 'unified', upload: config });
    expect(summary.upload).toMatchObject({ uploadId: 1, replayed: true, retries: 1 });
    expect(server.store.uploads).toHaveLength(1);
  });

  it('uploading the same export again is acknowledged, not stored twice; a changed view is a new upload', async () => {
    const { server, db, config } = await setup();
    const columns = ['customerId', 'productIds', 'customer'];
    const first = await exportCsv({ db, entity: 'unified', columns, upload: config });
    const again = await exportCsv({ db, entity: 'unified', columns, upload: config });
    expect(first.upload?.replayed).toBe(false);
    expect(again.upload).toMatchObject({ uploadId: first.upload?.uploadId, replayed: true });
    expect(server.store.uploads).toHaveLength(1);
    await seed(db, [customerItem('C11', { name: 'new customer' })]);
    const changed = await exportCsv({ db, entity: 'unified', columns, upload: config });
    expect(changed.upload).toMatchObject({ replayed: false, rows: 10 });
    expect(server.store.uploads).toHaveLength(2);
  });

  it('with --gzip the file is compressed and Analytics gets the plain CSV', async () => {
    const { server, db, config } = await setup();
    const out = join(tempDir('syncctl-export-'), 'view.csv.gz');
    const summary = await exportCsv({ db, entity: 'products', out, gzip: true, upload: config });
    expect(server.store.uploads[0]?.csv).toBe(gunzipSync(readFileSync(out)).toString('utf8'));
    expect(summary.upload?.rows).toBe(4);
  });

  it('an upload that keeps failing is a temporary failure; the file is written and no checkpoint is stored', async () => {
    const { server, db, config } = await setup({ faults: { serverError: { from: 1 } } });
    const out = join(tempDir('syncctl-export-'), 'view.csv');
    const err = await exportCsv({
      db,
      entity: 'unified',
      out,
      since: 'last',
      upload: { ...config, retries: 1 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkTransientError);
    expect(readFileSync(out, 'utf8')).toContain('C01');
    expect(server.store.uploads).toHaveLength(0);
    server.setFaults({});
    const retry = await exportCsv({ db, entity: 'unified', out, since: 'last', upload: config });
    expect(retry.rows).toBe(9);
  });
});
