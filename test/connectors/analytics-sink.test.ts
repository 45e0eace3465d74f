import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import {
  analyticsConfigFromSettings,
  createAnalyticsSink,
  uploadCsv,
  type AnalyticsConfig,
  type HttpAnalyticsSink,
} from '../../src/connectors/analytics-sink.js';
import type { SinkRecord } from '../../src/connectors/sink.js';
import { ConfigError, InterruptedError, SinkPermanentError, SinkTransientError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { SettingsSource } from '../../src/settings/index.js';
import { ANALYTICS_SETTINGS } from '../../src/settings/index.js';
import { addSettingOptions } from '../../src/cli/options.js';
import {
  startAnalyticsServer,
  type AnalyticsServer,
  type AnalyticsServerOptions,
} from '../../fixtures/analytics/server.js';

const TOKEN = 'sink-test-secret-token';
const servers: AnalyticsServer[] = [];
const sinks: HttpAnalyticsSink[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(
  serverOptions: AnalyticsServerOptions = {},
  config: Partial<AnalyticsConfig> = {},
  logs?: string[],
): Promise<{ server: AnalyticsServer; sink: HttpAnalyticsSink; config: AnalyticsConfig }> {
  const server = await startAnalyticsServer({ token: TOKEN, ...serverOptions });
  servers.push(server);
  const full: AnalyticsConfig = {
    url: server.url,
    token: TOKEN,
    timeoutMs: 2_000,
    retries: 4,
    batchSize: 100,
    backoffMs: 10,
    backoffLimitMs: 100,
    maxRetryAfterMs: 5_000,
    ...config,
  };
  const logger = logs ? createLogger('verbose', (s) => logs.push(s)) : undefined;
  const sink = createAnalyticsSink(full, logger);
  sinks.push(sink);
  return { server, sink, config: full };
}

function records(n: number, from = 1, prefix = 'k'): SinkRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `C${String(from + i).padStart(4, '0')}`;
    return {
      key: `${prefix}-${id}`,
      customerId: id,
      op: 'upsert' as const,
      record: { id, name: `Customer ${id}` },
    };
  });
}

/** Asserts the fixture's log holds each expected key exactly once and nothing else. */
function expectStoredOnce(server: AnalyticsServer, expected: SinkRecord[]): void {
  const keys = server.store.log.map((e) => e.key);
  expect(new Set(keys).size).toBe(keys.length);
  expect([...keys].sort()).toEqual(expected.map((r) => r.key).sort());
}

function ingestStats(server: AnalyticsServer) {
  return server.stats().filter((s) => s.endpoint === 'ingest');
}

describe('HttpAnalyticsSink: delivery and idempotency', () => {
  it('delivers a batch, and delivering it again under the same key stores nothing twice', async () => {
    const { server, sink } = await setup();
    const batch = records(5);
    const outcome = await sink.deliver(batch, 'batch-a');
    expect(outcome.delivered).toEqual(batch);
    expect(outcome.failed).toEqual([]);
    expect(outcome.retries).toBe(0);
    expectStoredOnce(server, batch);
    expect(server.store.currentView().map((e) => e.record)).toEqual(batch.map((r) => r.record));

    const again = await sink.deliver(batch, 'batch-a');
    expect(again.delivered).toEqual(batch);
    expectStoredOnce(server, batch);
    expect(ingestStats(server).map((s) => [s.batchKey, s.outcome])).toEqual([
      ['batch-a', 'ok'],
      ['batch-a', 'replayed'],
    ]);
  });

  it('acknowledges records already stored under another batch key as duplicates', async () => {
    const { server, sink } = await setup();
    await sink.deliver(records(3), 'b1');
    const outcome = await sink.deliver(records(5), 'b2');
    expect(outcome.delivered).toHaveLength(5);
    expect(outcome.duplicates).toBe(3);
    expectStoredOnce(server, records(5));
  });

  it('splits large deliveries into stable sub-batch keys, so a rerun sends the same keys', async () => {
    const { server, sink } = await setup({}, { batchSize: 4 });
    const batch = records(10);
    await sink.deliver(batch, 'big');
    expect(ingestStats(server).map((s) => s.batchKey)).toEqual(['big/0-3', 'big/4-7', 'big/8-9']);
    await sink.deliver(batch, 'big');
    expect(ingestStats(server).map((s) => [s.batchKey, s.outcome])).toEqual([
      ['big/0-3', 'ok'],
      ['big/4-7', 'ok'],
      ['big/8-9', 'ok'],
      ['big/0-3', 'replayed'],
      ['big/4-7', 'replayed'],
      ['big/8-9', 'replayed'],
    ]);
    expectStoredOnce(server, batch);
  });

  it('sends deletes as deletes', async () => {
    const { server, sink } = await setup();
    await sink.deliver(records(2), 'b1');
    const del: SinkRecord = { key: 'del-C0001', customerId: 'C0001', op: 'delete', record: null };
    const outcome = await sink.deliver([del], 'b2');
    expect(outcome.delivered).toEqual([del]);
    expect(server.store.currentView().map((e) => e.customerId)).toEqual(['C0002']);
    expect(server.store.log.at(-1)).toMatchObject({ key: 'del-C0001', op: 'delete' });
  });

  it('does not call Analytics for an empty delivery', async () => {
    const { server, sink } = await setup();
    expect(await sink.deliver([], 'empty')).toMatchObject({
      delivered: [],
      failed: [],
      retries: 0,
      requests: 0,
    });
    expect(ingestStats(server)).toEqual([]);
  });
});

describe('HttpAnalyticsSink: transient failures', () => {
  it('retries 5xx, HTML error pages and 429 until everything is delivered, counting retries', async () => {
    const logs: string[] = [];
    const { server, sink } = await setup(
      { faults: { serverError: { first: 2 }, html: { every: 4 }, rateLimit: { every: 5, retryAfter: 0 } } },
      {},
      logs,
    );
    const all: SinkRecord[] = [];
    let retries = 0;
    for (let b = 0; b < 4; b++) {
      const batch = records(3, b * 3 + 1);
      all.push(...batch);
      const outcome = await sink.deliver(batch, `t-${b}`);
      expect(outcome.delivered).toEqual(batch);
      retries += outcome.retries;
    }
    expectStoredOnce(server, all);
    const failures = ingestStats(server).filter((s) => s.status !== 200);
    expect(failures.map((s) => s.status)).toEqual([503, 503, 502, 429, 502]);
    expect(retries).toBe(failures.length);
    expect(logs.join('')).toMatch(/retry 1\/4 of t-0 after HTTP 503/);
    expect(logs.join('')).not.toContain(TOKEN);
  });

  it('honours Retry-After (measured at the server)', async () => {
    const { server, sink } = await setup({ faults: { rateLimit: { first: 1, retryAfter: 1 } } });
    const outcome = await sink.deliver(records(2), 'ra');
    expect(outcome.retries).toBe(1);
    const [limited, next] = ingestStats(server);
    expect(limited?.status).toBe(429);
    expect(next?.status).toBe(200);
    expect((next?.at ?? 0) - (limited?.respondedAt ?? Infinity)).toBeGreaterThanOrEqual(1_000);
    expectStoredOnce(server, records(2));
  });

  it.each([
    ['storeThenDrop', {}],
    ['storeThenHang', { timeoutMs: 300 }],
    ['truncated', {}],
    ['malformed', {}],
  ] as const)(
    '"%s": the batch was stored but the answer lost; the retry is replayed and nothing is stored twice',
    async (fault, config) => {
      const { server, sink } = await setup({ faults: { [fault]: { first: 1 } } }, config);
      const batch = records(4);
      const outcome = await sink.deliver(batch, 'lost-answer');
      expect(outcome.delivered).toEqual(batch);
      expect(outcome.retries).toBe(1);
      expectStoredOnce(server, batch);
      expect(ingestStats(server).map((s) => s.outcome)).toEqual([
        expect.stringMatching(/^stored-then-/),
        'replayed',
      ]);
    },
  );

  it('retries a hung request after the timeout and a dropped connection', async () => {
    const { server, sink } = await setup(
      { faults: { hang: { first: 1 }, drop: { every: 2 } } },
      { timeoutMs: 300 },
    );
    const outcome = await sink.deliver(records(3), 'h');
    expect(outcome.delivered).toHaveLength(3);
    expect(ingestStats(server).map((s) => s.outcome)).toEqual(['hang', 'drop', 'ok']);
    expectStoredOnce(server, records(3));
  });

  it('throws SinkTransientError when retries are exhausted, and a rerun with the same key completes', async () => {
    const { server, sink } = await setup(
      { faults: { serverError: { from: 2 } } },
      { batchSize: 2, retries: 2 },
    );
    const batch = records(5);
    const err = await sink.deliver(batch, 'crash').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkTransientError);
    expect((err as SinkTransientError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/crash\/2-3.*503.*3 attempts/);
    expect(ingestStats(server)).toHaveLength(4);
    expectStoredOnce(server, batch.slice(0, 2));

    server.setFaults({});
    const outcome = await sink.deliver(batch, 'crash');
    expect(outcome.delivered).toEqual(batch);
    expectStoredOnce(server, batch);
    expect(
      ingestStats(server)
        .slice(4)
        .map((s) => [s.batchKey, s.outcome]),
    ).toEqual([
      ['crash/0-1', 'replayed'],
      ['crash/2-3', 'ok'],
      ['crash/4-4', 'ok'],
    ]);
  });

  it('gives up at once when Retry-After is longer than allowed, saying how long to wait', async () => {
    const { server, sink } = await setup(
      { faults: { rateLimit: { first: 1, retryAfter: 120 } } },
      { maxRetryAfterMs: 1_000 },
    );
    const started = Date.now();
    const err = (await sink.deliver(records(1), 'long-wait').catch((e: unknown) => e)) as SinkTransientError;
    expect(err).toBeInstanceOf(SinkTransientError);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 120_000 });
    expect(ingestStats(server)).toHaveLength(1);
  });

  it('stops waiting when the caller aborts (shutdown) and says it was interrupted', async () => {
    const { server, sink } = await setup({ faults: { rateLimit: { first: 1, retryAfter: 3 } } });
    const started = Date.now();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const err = await sink
      .deliver(records(2), 'stop', { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(ingestStats(server)).toHaveLength(1);
    expect(server.store.log).toEqual([]);
  });

  it('throws SinkTransientError when Analytics is not listening', async () => {
    const { server, sink } = await setup({}, { retries: 1 });
    await server.close();
    const err = await sink.deliver(records(1), 'down').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkTransientError);
    expect((err as SinkTransientError).details).toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('HttpAnalyticsSink: permanent failures', () => {
  it('returns exactly the poison records as failed and stores the rest (400 naming them)', async () => {
    const { server, sink } = await setup({
      faults: { poison: { customerIds: ['C0003'], marker: 'POISON' } },
    });
    const batch = records(6);
    (batch[4] as SinkRecord).record = { id: 'C0005', name: 'POISON pill' };
    const outcome = await sink.deliver(batch, 'poison');
    expect(outcome.failed.map((f) => f.record.key)).toEqual(['k-C0003', 'k-C0005']);
    for (const f of outcome.failed) {
      expect(f.error).toBeInstanceOf(SinkPermanentError);
      expect(f.error.retryable).toBe(false);
      expect(f.attempts).toBe(1);
    }
    expect(outcome.failed[0]?.error.message).toMatch(/C0003/);
    expect(outcome.delivered.map((r) => r.key)).toEqual(['k-C0001', 'k-C0002', 'k-C0004', 'k-C0006']);
    expectStoredOnce(server, outcome.delivered);

    // The remainder went under a derived key, so delivering again replays it.
    await sink.deliver(batch, 'poison');
    expectStoredOnce(server, outcome.delivered);
  });

  it('counts the attempts a poison record went through, transient failures included', async () => {
    const { sink } = await setup({
      faults: { serverError: { first: 2 }, poison: { customerIds: ['C0002'] } },
    });
    const outcome = await sink.deliver(records(3), 'p2');
    expect(outcome.failed).toHaveLength(1);
    expect(outcome.failed[0]?.attempts).toBe(3);
    expect(outcome.delivered).toHaveLength(2);
  });

  it('handles per-record rejects in a 200 answer', async () => {
    const { server, sink } = await setup({ faults: { poison: { customerIds: ['C0002'], mode: 'record' } } });
    const outcome = await sink.deliver(records(3), 'rec-mode');
    expect(outcome.failed.map((f) => f.record.customerId)).toEqual(['C0002']);
    expect(outcome.failed[0]?.error).toBeInstanceOf(SinkPermanentError);
    expect(outcome.delivered.map((r) => r.customerId)).toEqual(['C0001', 'C0003']);
    expectStoredOnce(server, outcome.delivered);
  });

  it('splits a batch on 413 until it fits, and fails a single record that never fits', async () => {
    const { server, sink } = await setup({ maxBatch: 3, maxBatchBytes: 4_000 });
    const batch = records(10);
    (batch[7] as SinkRecord).record = { id: 'C0008', blob: 'x'.repeat(5_000) };
    const outcome = await sink.deliver(batch, 'split');
    expect(outcome.failed.map((f) => f.record.key)).toEqual(['k-C0008']);
    expect(outcome.failed[0]?.error.message).toMatch(/too large \(413\)/);
    expect(outcome.delivered).toEqual(batch.filter((_, i) => i !== 7));
    expectStoredOnce(server, outcome.delivered);
    const stats = ingestStats(server);
    expect(stats.filter((s) => s.status === 413).length).toBeGreaterThan(0);
    expect(stats.every((s) => s.status === 413 || (s.records ?? 0) <= 3)).toBe(true);
    expect(stats[1]?.batchKey).toBe('split/0-4');
  });

  it('throws SinkPermanentError on 401 without retrying and never leaks the token', async () => {
    const { server, config } = await setup();
    const sink = createAnalyticsSink({ ...config, token: 'wrong-token-value-123' });
    sinks.push(sink);
    const err = (await sink.deliver(records(2), 'auth').catch((e: unknown) => e)) as SinkPermanentError;
    expect(err).toBeInstanceOf(SinkPermanentError);
    expect(err.message).toMatch(/credentials \(401\)/);
    expect(err.hint).toMatch(/SYNCCTL_ANALYTICS_TOKEN/);
    expect(ingestStats(server)).toHaveLength(1);
    const everything = JSON.stringify({ m: err.message, h: err.hint, d: err.details, c: String(err.cause) });
    expect(everything).not.toContain('wrong-token-value-123');
  });

  it('throws SinkPermanentError with a URL hint on 404', async () => {
    const { server, config } = await setup();
    const sink = createAnalyticsSink({ ...config, url: `${server.url}/wrong-base/` });
    sinks.push(sink);
    const err = (await sink.deliver(records(1), 'nf').catch((e: unknown) => e)) as SinkPermanentError;
    expect(err).toBeInstanceOf(SinkPermanentError);
    expect(err.hint).toMatch(/SYNCCTL_ANALYTICS_URL/);
  });

  it('throws SinkPermanentError when a batch key is reused for different content', async () => {
    const { sink } = await setup();
    await sink.deliver(records(2), 'reused');
    const err = await sink.deliver(records(2, 10), 'reused').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkPermanentError);
    expect((err as Error).message).toMatch(/Idempotency-Key was used for different content \(422\)/);
  });
});

describe('analyticsConfigFromSettings', () => {
  const source = (
    env: Record<string, string>,
    profile: Record<string, string | number> = {},
  ): SettingsSource => ({
    env,
    profile,
    profileName: 'default',
    profilePath: '/nowhere/profiles.json',
  });

  it('reads SYNCCTL_ANALYTICS_* with flags winning and defaults filling in', () => {
    const config = analyticsConfigFromSettings(
      source(
        {
          SYNCCTL_ANALYTICS_URL: 'http://127.0.0.1:9/',
          SYNCCTL_ANALYTICS_TOKEN: 'env-token',
          SYNCCTL_ANALYTICS_TIMEOUT_MS: '1234',
          SYNCCTL_ANALYTICS_RETRIES: '7',
        },
        { analyticsBatchSize: 50 },
      ),
      { analyticsRetries: 1 },
    );
    expect(config).toMatchObject({
      url: 'http://127.0.0.1:9/',
      token: 'env-token',
      timeoutMs: 1234,
      retries: 1,
      batchSize: 50,
      maxRetryAfterMs: 60_000,
    });
  });

  it('takes the --analytics-* flags a command declares from the settings definitions', () => {
    const command = addSettingOptions(new Command('consume').exitOverride(), ANALYTICS_SETTINGS);
    command.parse(
      ['--analytics-url', 'http://flag:1', '--analytics-batch-size', '25', '--analytics-timeout-ms', '99'],
      {
        from: 'user',
      },
    );
    const config = analyticsConfigFromSettings(
      source({ SYNCCTL_ANALYTICS_URL: 'http://env:1', SYNCCTL_ANALYTICS_TOKEN: 'env-token' }),
      command.opts(),
    );
    expect(config).toMatchObject({ url: 'http://flag:1/', token: 'env-token', batchSize: 25, timeoutMs: 99 });
    const bad = addSettingOptions(new Command('consume').exitOverride(), ANALYTICS_SETTINGS);
    bad.parse(['--analytics-retries', '-1'], { from: 'user' });
    expect(() =>
      analyticsConfigFromSettings(
        source({ SYNCCTL_ANALYTICS_URL: 'http://env:1', SYNCCTL_ANALYTICS_TOKEN: 'env-token' }),
        bad.opts(),
      ),
    ).toThrow(/--analytics-retries must be an integer ≥ 0, got "-1"/);
  });

  it('names the setting to fix when something is missing or wrong', () => {
    expect(() => analyticsConfigFromSettings(source({}))).toThrow(ConfigError);
    expect(() => analyticsConfigFromSettings(source({}))).toThrow(/url is required/);
    expect(() => analyticsConfigFromSettings(source({ SYNCCTL_ANALYTICS_URL: 'http://x' }))).toThrow(
      /token is required/,
    );
    expect(() =>
      analyticsConfigFromSettings(source({ SYNCCTL_ANALYTICS_URL: 'ftp://x', SYNCCTL_ANALYTICS_TOKEN: 't' })),
    ).toThrow(/http/);
    expect(() =>
      analyticsConfigFromSettings(
        source({
          SYNCCTL_ANALYTICS_URL: 'http://x',
          SYNCCTL_ANALYTICS_TOKEN: 't',
          SYNCCTL_ANALYTICS_BATCH_SIZE: '0',
        }),
      ),
    ).toThrow(/SYNCCTL_ANALYTICS_BATCH_SIZE must be an integer ≥ 1/);
    expect(() =>
      analyticsConfigFromSettings(
        source({
          SYNCCTL_ANALYTICS_URL: 'http://x',
          SYNCCTL_ANALYTICS_TOKEN: 't',
          SYNCCTL_ANALYTICS_RETRIES: 'many',
        }),
      ),
    ).toThrow(/SYNCCTL_ANALYTICS_RETRIES/);
  });
});

describe('uploadCsv', () => {
  const csv = 'customerId,name\nC1,Ann\nC2,"Bo, Jr."\n';

  it('uploads a file with retries (a fresh body per attempt) and once per key', async () => {
    const { server, config } = await setup({
      faults: { serverError: { first: 1 }, storeThenDrop: { every: 2 } },
    });
    const dir = mkdtempSync(join(tmpdir(), 'sink-upload-'));
    dirs.push(dir);
    const file = join(dir, 'view.csv');
    writeFileSync(file, csv);
    const result = await uploadCsv(config, file, 'export-1');
    expect(result).toMatchObject({
      uploadId: 1,
      rows: 2,
      columns: ['customerId', 'name'],
      replayed: true,
      retries: 2,
    });
    expect(server.store.uploads).toHaveLength(1);
    expect(server.store.uploads[0]?.csv).toBe(csv);
  });

  it('uploads a stream', async () => {
    const { server, config } = await setup({ faults: { serverError: { first: 1 } } });
    const result = await uploadCsv(config, Readable.from([csv.slice(0, 10), csv.slice(10)]), 'export-2');
    expect(result).toMatchObject({ rows: 2, replayed: false, retries: 1 });
    expect(server.store.uploads[0]?.csv).toBe(csv);
  });

  it('fails permanently on 401 without retrying', async () => {
    const { server, config } = await setup();
    const err = await uploadCsv(
      { ...config, token: 'nope-nope-nope' },
      Readable.from([csv]),
      'export-3',
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkPermanentError);
    expect(server.stats().filter((s) => s.endpoint === 'upload')).toHaveLength(1);
  });
});
