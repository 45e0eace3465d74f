import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { openDb } from '../../src/state/db.js';
import { acquireLock } from '../../src/state/locks.js';
import type { StatusReport } from '../../src/stages/status.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createHarness, type Harness } from '../helpers/consume-harness.js';
import { testBrokers, testKafka } from '../helpers/kafka.js';

const CRM_TOKEN = 'status-crm-token-2a9c';
const INV_USER = 'status';
const INV_PASSWORD = 'status-inventory-password-6e1d';

let crm: CrmServer;
let inventory: InventoryServer;
let h: Harness;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  crm = await startCrmServer({ seed: 9, count: 50, products: 12, token: CRM_TOKEN });
  inventory = await startInventoryServer({ seed: 9, count: 12, user: INV_USER, password: INV_PASSWORD });
  h = await createHarness('sqlite');
  env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: CRM_TOKEN,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: INV_USER,
    SYNCCTL_INVENTORY_PASSWORD: INV_PASSWORD,
  });
});

afterAll(async () => {
  await h?.close();
  await crm?.close();
  await inventory?.close();
});

function args(brokers: string, command: string, ...extra: string[]): string[] {
  return [
    '--brokers',
    brokers,
    '--connect-timeout',
    '2000',
    '--state',
    h.state,
    command,
    '--group',
    h.group,
    '--customer-topic',
    h.customerTopic,
    '--product-topic',
    h.productTopic,
    '--dlq-topic',
    h.dlqTopic,
    ...extra,
  ];
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
