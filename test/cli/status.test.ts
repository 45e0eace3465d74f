import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { DeadLetterProducer, type DeadLetter } from '../../src/connectors/dead-letter.js';
import { Checkpoints } from '../../src/state/checkpoints.js';
import { openDb } from '../../src/state/db.js';
import { acquireLock } from '../../src/state/locks.js';
import type { StatusReport } from '../../src/stages/status.js';
import { runSyncctl } from '../helpers/cli.js';
import type { Harness } from '../helpers/consume-harness.js';
import { startJobWorld, type JobWorld } from '../helpers/job-world.js';
import { testBrokers, testKafka } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

let world: JobWorld;
let h: Harness;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  world = await startJobWorld({ state: 'sqlite', seed: 9, customers: 50, products: 12, tag: 'status' });
  ({ h, env } = world);
});

afterAll(async () => {
  await world?.close();
});

function args(brokers: string, command: string, ...extra: string[]): string[] {
  return world.args(command, ['--connect-timeout', '2000', ...extra], brokers);
}

it('shows offsets, lag, checkpoints, the last runs and lock holders without joining the group', async () => {
  let run = await runSyncctl(args(testBrokers(), 'run', '--session-timeout', '6'), { env });
  // The first group join after the broker starts can meet "The coordinator is loading" (issue 11 item 7).
  if (run.code === 75 && /coordinator is loading/.test(run.stderr)) {
    run = await runSyncctl(args(testBrokers(), 'run', '--session-timeout', '6'), { env });
  }
  expect(run.code).toBe(0);

  const db = await openDb(h.state);
  const lock = await acquireLock(db, 'run:other', { runId: 'holder-run' });
  try {
    const json = await runSyncctl([...args(testBrokers(), 'status', '--runs', '5'), '--json'], { env });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as StatusReport;
    const k = report.kafka!;
    expect(k.missing).toEqual([]);
    expect(k.lag).toBe(0);
    expect(k.deadLetterDepth).toBe(0);
    const data = k.partitions.filter((p) => p.topic !== h.dlqTopic);
    expect(data.reduce((sum, p) => sum + p.high, 0)).toBe(50 + 12);
    for (const p of data) expect(p.committed ?? p.low).toBe(p.high);
    expect(report.state.checkpoints.map((c) => c.name)).toEqual(
      expect.arrayContaining(['fetch:crm', 'fetch:inventory']),
    );
    expect(report.state.runs.map((r) => [r.job, r.outcome, r.exitCode])).toEqual([['default', 'ok', 0]]);
    expect(report.state.runs[0]!.steps.map((s) => s.name)).toEqual([
      'fetch:crm',
      'fetch:inventory',
      'consume',
    ]);
    expect(report.state.locks.map((l) => [l.name, l.runId, l.pid])).toEqual([
      ['run:other', 'holder-run', process.pid],
    ]);

    const text = await runSyncctl(args(testBrokers(), 'status'), { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(h.customerTopic);
    expect(text.stdout).toMatch(/run:other\s.*holder-run/);
    expect(text.stdout).toContain('fetch:crm');
  } finally {
    await lock.release();
    await db.close();
  }
  // Reading the group's offsets is not joining it.
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([h.group]);
    expect(groups[0]!.members).toEqual([]);
  } finally {
    await admin.disconnect();
  }
});

it('still shows the state store when Kafka is unreachable, and exits 75', async () => {
  const json = await runSyncctl([...args('127.0.0.1:1', 'status'), '--json'], { env });
  expect(json.code).toBe(75);
  const report = JSON.parse(json.stdout) as StatusReport & { kafkaError: { code: string } };
  expect(report.kafka).toBeNull();
  expect(report.kafkaError.code).toBe('E_BROKER_UNREACHABLE');
  expect(report.state.runs.length).toBeGreaterThan(0);
  expect(json.stderr).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1/);

  const text = await runSyncctl(args('127.0.0.1:1', 'status'), { env });
  expect(text.code).toBe(75);
  expect(text.stdout).toMatch(/Kafka: unavailable/);
  expect(text.stdout).toContain('fetch:crm');
});

function letter(errorClass: string, code: string, offset: number): DeadLetter {
  return {
    kind: 'unified-record',
    key: `c-${offset}`,
    value: '{}',
    source: {
      topic: h.customerTopic,
      partition: 0,
      offset: String(offset),
      key: `c-${offset}`,
      timestamp: null,
    },
    error: { class: errorClass, code, message: `${code} for c-${offset}` },
    attempts: 1,
  };
}

it('shows the dead-letter depth by error class and each backfill window done / in progress / remaining', async () => {
  const letters = new DeadLetterProducer(testKafka(), [testBrokers()], h.dlqTopic, h.group);
  await letters.connect();
  try {
    await letters.send([
      letter('RecordRefusedError', 'E_RECORD_REFUSED', 1),
      letter('ValidationError', 'E_INVALID_ENVELOPE', 2),
      letter('RecordRefusedError', 'E_RECORD_REFUSED', 3),
    ]);
  } finally {
    await letters.close();
  }
  // A finished backfill, cut into 4 windows by a real fetch...
  const out = join(tempDir('status'), 'backfill.ndjson');
  const fetched = await runSyncctl(
    [
      '--state',
      h.state,
      'fetch',
      '--source',
      'crm',
      '--since',
      '2000-01-01',
      '--until',
      '2100-01-01',
      '--window',
      '4',
      '--out',
      out,
    ],
    { env },
  );
  expect(fetched.code, fetched.stderr).toBe(0);
  // ...and one a killed fetch left behind: 1 of 5 windows done, 1 in progress, 3 not started.
  const db = await openDb(h.state);
  try {
    const checkpoints = await Checkpoints.open(db);
    const range = 'fetch:inventory:backfill:2024-01-01T00:00:00.000Z/2024-01-06T00:00:00.000Z';
    await checkpoints.set(range, {
      kind: 'range',
      since: '2024-01-01T00:00:00.000Z',
      until: '2024-01-06T00:00:00.000Z',
      openEnded: false,
      window: { kind: 'duration', ms: 86_400_000, text: '1d' },
      status: 'running',
      startedAt: '2026-12-01T00:00:00.000Z',
      completedAt: null,
    });
    const window = (day: number, status: string, records: number) => ({
      kind: 'window',
      status,
      since: `2024-01-0${day}T00:00:00.000Z`,
      until: `2024-01-0${day + 1}T00:00:00.000Z`,
      exhausted: status === 'done',
      maxHighWater: null,
      pages: 1,
      records,
      deletes: 0,
      rejects: 0,
      out: null,
      startedAt: '2026-12-01T00:00:00.000Z',
      updatedAt: '2026-12-01T00:00:00.000Z',
    });
    await checkpoints.set(`${range}:2024-01-01T00:00:00.000Z`, window(1, 'done', 7));
    await checkpoints.set(`${range}:2024-01-02T00:00:00.000Z`, window(2, 'running', 3));
  } finally {
    await db.close();
  }

  const json = await runSyncctl([...args(testBrokers(), 'status'), '--json'], { env });
  expect(json.code, json.stderr).toBe(0);
  const report = JSON.parse(json.stdout) as StatusReport;
  expect(report.kafka!.deadLetterDepth).toBe(3);
  expect(report.kafka!.deadLetters.map((d) => [d.errorClass, d.errorCode, d.count, d.kinds])).toEqual([
    ['RecordRefusedError', 'E_RECORD_REFUSED', 2, ['unified-record']],
    ['ValidationError', 'E_INVALID_ENVELOPE', 1, ['unified-record']],
  ]);
  const backfills = report.state.backfills.map((b) => [
    b.source,
    b.status,
    b.windows,
    b.done,
    b.inProgress,
    b.remaining,
    b.records,
  ]);
  expect(backfills).toEqual([
    ['crm', 'done', 4, 4, 0, 0, 50],
    ['inventory', 'running', 5, 1, 1, 3, 10],
  ]);
  // Windows are summed up, not listed one by one.
  expect(report.state.checkpoints.some((c) => c.name.includes(':backfill:'))).toBe(false);

  const text = await runSyncctl([...args(testBrokers(), 'status'), '-o', 'plain'], { env });
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/^RecordRefusedError\s+E_RECORD_REFUSED\s+2\b/m);
  expect(text.stdout).toMatch(
    /^inventory\s+2024-01-01T00:00:00\.000Z\s+2024-01-06T00:00:00\.000Z\s+1d\s+running\s+1\/5\s+1\s+3\s+10$/m,
  );
  expect(text.stdout).not.toContain('\u001b[');
});
