/**
 * The whole product, as an operator runs it: CRM (REST) and Inventory (SOAP) fixtures →
 * `syncctl fetch --publish` → Kafka → `syncctl consume --once` → Analytics fixture, with faults on
 * every system and a consumer killed mid-run. What Analytics holds is compared with a join computed
 * here, independently, from the fixtures' own data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl, startSyncctl } from '../helpers/cli.js';
import {
  createHarness,
  expectNothingStoredTwice,
  storedRecords,
  writeLog,
  type Harness,
} from '../helpers/consume-harness.js';
import { testBrokers } from '../helpers/kafka.js';

const CUSTOMERS = 300;
const PRODUCTS = 60;
const CRM_TOKEN = 'e2e-crm-token-83a1';
const INV_USER = 'e2e';
const INV_PASSWORD = 'e2e-inventory-password-1c9f';

let crm: CrmServer;
let inventory: InventoryServer;
let h: Harness;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  crm = await startCrmServer({
    seed: 7,
    count: CUSTOMERS,
    products: PRODUCTS,
    token: CRM_TOKEN,
    pagination: 'cursor',
    faults: { serverError: { every: 5 }, rateLimit: { first: 1, retryAfter: 1 }, duplicates: 2 },
  });
  inventory = await startInventoryServer({
    seed: 7,
    count: PRODUCTS,
    user: INV_USER,
    password: INV_PASSWORD,
    pageSize: 25,
    faults: { soapFault: { every: 3 } },
  });
  h = await createHarness('postgres', {
    faults: { serverError: { every: 6 }, storeThenDrop: { every: 9 }, latencyMs: 60 },
  });
  env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: CRM_TOKEN,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: INV_USER,
    SYNCCTL_INVENTORY_PASSWORD: INV_PASSWORD,
    SYNCCTL_INVENTORY_BACKOFF_BASE: '50',
  });
});

afterAll(async () => {
  await h?.close();
  await crm?.close();
  await inventory?.close();
});

const common = () => ['--brokers', testBrokers(), '--state', h.state];
const consumeArgs = () => [...h.cliArgs(), '--once', '--batch-size', '20', '--session-timeout', '6'];

async function fetchBoth(): Promise<void> {
  for (const [source, topic] of [
    ['crm', h.customerTopic],
    ['inventory', h.productTopic],
  ] as const) {
    const run = await runSyncctl(
      [
        ...common(),
        '--json',
        'fetch',
        '--source',
        source,
        '--publish',
        '--topic',
        topic,
        '--crm-page-size',
        '50',
      ],
      { env },
    );
    expect(run.stderr, `fetch ${source}`).not.toMatch(/error/);
    expect(run.code, `fetch ${source}`).toBe(0);
  }
}

interface ExpectedEntry {
  customer: unknown;
  products: [string, boolean, string, string][];
}

/** The expected unified view: live customers joined with the current products, by hand. */
function expectedView(): Map<string, ExpectedEntry> {
  const products = new Map([...inventory.control.store.records()].map((p) => [p.id, p]));
  const view = new Map<string, ExpectedEntry>();
  const customers = [...crm.control.store.records()].filter((c) => !c.archived);
  for (const c of customers.sort((a, b) => a.id.localeCompare(b.id))) {
    const refs = [...new Set(c.productIds)];
    view.set(c.id, {
      customer: JSON.parse(JSON.stringify(c)),
      products: refs.map((id) => {
        const p = products.get(id)!;
        return [id, p.discontinued, p.name, p.sku];
      }),
    });
  }
  return view;
}

async function expectAnalyticsHoldsTheJoin(): Promise<void> {
  const expected = expectedView();
  const stored = await storedRecords(h.server);
  expect(stored.map((r) => r.customerId)).toEqual([...expected.keys()]);
  for (const r of stored) {
    const record = r.record as {
      customer: unknown;
      products: { productId: string; discontinued: boolean; product: { name: string; sku: string } }[];
      unresolvedProductIds: string[];
    };
    const want = expected.get(r.customerId)!;
    expect(record.customer).toEqual(want.customer);
    expect(record.products.map((p) => [p.productId, p.discontinued, p.product.name, p.product.sku])).toEqual(
      want.products,
    );
    expect(record.unresolvedProductIds).toEqual([]);
  }
}

describe('CRM + Inventory → fetch → Kafka → consume → Analytics', () => {
  it('lands exactly the expected join under faults and a killed consumer, then follows changes', async () => {
    await fetchBoth();
    expect(crm.control.stats().faultsFired).not.toEqual({});
    expect(inventory.control.stats().soap.serverFaults).toBeGreaterThan(0);

    // A consumer killed with SIGKILL in the middle of delivering…
    const killed = startSyncctl(consumeArgs(), env);
    const deadline = Date.now() + 60_000;
    while ((await writeLog(h.server)).length < 40 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    killed.process.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    const before = (await writeLog(h.server)).length;
    expect(before).toBeGreaterThanOrEqual(40);

    // …and a rerun: everything is there, nothing twice.
    const rerun = await runSyncctl(['--json', ...consumeArgs()], { env, timeoutMs: 180_000 });
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    expect((await writeLog(h.server)).length).toBeGreaterThan(before);
    expect(h.server.stats().some((r) => r.status !== 200)).toBe(true);
    await expectAnalyticsHoldsTheJoin();
    const firstLog = await expectNothingStoredTwice(h.server);

    // The sources change: updates, archived customers, changed and discontinued products.
    const crmChange = crm.control.mutate({ update: 12, delete: 4 });
    const invChange = inventory.control.mutate({ update: 3, discontinue: 2 });
    const changedProducts = new Set([...invChange.updated, ...invChange.discontinued]);
    const touched = new Set([...crmChange.updated, ...crmChange.deleted]);
    for (const c of crm.control.store.records()) {
      if (!c.archived && c.productIds.some((p) => changedProducts.has(p))) touched.add(c.id);
    }

    await fetchBoth();
    const second = await runSyncctl(['--json', ...consumeArgs()], { env, timeoutMs: 180_000 });
    expect(second.code).toBe(0);
    await expectAnalyticsHoldsTheJoin();
    const log = await expectNothingStoredTwice(h.server);

    // Only what changed was delivered again; archived customers arrive as deletes.
    const secondRound = log.slice(firstLog.length);
    expect(new Set(secondRound.map((e) => e.customerId))).toEqual(touched);
    expect(
      secondRound
        .filter((e) => e.op === 'delete')
        .map((e) => e.customerId)
        .sort(),
    ).toEqual([...crmChange.deleted].sort());
  });
});
