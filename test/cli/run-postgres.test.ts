/**
 * The run lock on a PostgreSQL state store, from two processes: a session advisory lock that the
 * server frees when the holder's connection dies, however it died.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { openDb } from '../../src/state/db.js';
import { Runs } from '../../src/state/runs.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { createHarness, type Harness } from '../helpers/consume-harness.js';
import { testBrokers } from '../helpers/kafka.js';

const CRM_TOKEN = 'run-pg-crm-token-31c9';
const INV_USER = 'runpg';
const INV_PASSWORD = 'run-pg-inventory-password-8d0f';

let crm: CrmServer;
let inventory: InventoryServer;
let h: Harness;
let env: Record<string, string | undefined>;
const children: Child[] = [];

beforeAll(async () => {
  crm = await startCrmServer({ seed: 8, count: 40, products: 10, token: CRM_TOKEN });
  inventory = await startInventoryServer({ seed: 8, count: 10, user: INV_USER, password: INV_PASSWORD });
  // A private schema of the shared test database (test/helpers/postgres.ts).
  h = await createHarness('postgres');
  env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: CRM_TOKEN,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: INV_USER,
    SYNCCTL_INVENTORY_PASSWORD: INV_PASSWORD,
  });
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
});

afterAll(async () => {
  await h?.close();
  await crm?.close();
  await inventory?.close();
});

function runArgs(...extra: string[]): string[] {
  return [
    '--brokers',
    testBrokers(),
    '--state',
    h.state,
    'run',
    '--job',
    'nightly',
    '--group',
    h.group,
    '--customer-topic',
    h.customerTopic,
    '--product-topic',
    h.productTopic,
    '--dlq-topic',
    h.dlqTopic,
    '--session-timeout',
    '6',
    ...extra,
  ];
}

it('two runs on one PostgreSQL store: the second exits 4 naming the holder; after SIGKILL the next takes over', async () => {
  expect(h.state).toMatch(/^postgres:\/\//);
  crm.control.setFaults({ latencyMs: 10_000 });
  const before = crm.control.stats().requests;
  const first = startSyncctl(runArgs(), env);
  children.push(first);
  let holder = '';
  try {
    await waitFor('the first run to fetch', () => crm.control.stats().requests > before, 30_000);
    const second = await runSyncctl(runArgs(), { env });
    expect(second.code, second.stderr).toBe(4);
    expect(second.stderr).toMatch(
      new RegExp(
        `lock run:nightly is held by run [0-9a-f-]{36} \\(pid ${first.process.pid} on .+\\) since \\d{4}-`,
      ),
    );
    holder = /held by run ([0-9a-f-]{36})/.exec(second.stderr)![1]!;
    first.process.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
  } finally {
    crm.control.setFaults({});
  }
  // The server ends the dead process's session (and frees its advisory lock) once it sees the
  // connection close; the next run gets the lock then.
  let third = await runSyncctl([...runArgs(), '--json'], { env });
  for (let i = 0; i < 5 && third.code === 4; i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    third = await runSyncctl([...runArgs(), '--json'], { env });
  }
  if (third.code === 75 && /coordinator is loading/.test(third.stderr))
    third = await runSyncctl([...runArgs(), '--json'], { env });
  expect(third.code, third.stderr).toBe(0);
  expect((JSON.parse(third.stdout) as { outcome: string }).outcome).toBe('ok');
  expect(third.stderr).toContain(`run ${holder} of job nightly`);

  const db = await openDb(h.state);
  try {
    const runs = await (await Runs.open(db)).recent(10, 'nightly');
    expect(runs.find((r) => r.id === holder)?.outcome).toBe('killed');
    expect(runs[0]!.outcome).toBe('ok');
  } finally {
    await db.close();
  }
});
