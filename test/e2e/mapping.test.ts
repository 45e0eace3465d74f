/**
 * Connecting systems shaped like the big vendors' by configuration only: a CRM with `;`-joined
 * references, status-valued deletes and epoch-millisecond times, or with references as objects; an
 * Inventory SOAP service with other element names and no "changed until" filter. fetch --publish →
 * consume --once → Analytics is compared with a join computed here from the fixtures' own data.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmRecordShape, type CrmServer } from '../../fixtures/crm/server.js';
import { shapeCustomer } from '../../fixtures/crm/shapes.js';
import {
  startInventoryServer,
  type InventoryDialect,
  type InventoryServer,
} from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import {
  createHarness,
  expectNothingStoredTwice,
  storedRecords,
  type Harness,
} from '../helpers/consume-harness.js';
import { testBrokers } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

const CUSTOMERS = 120;
const PRODUCTS = 40;

interface Setup {
  crm: CrmServer;
  inventory: InventoryServer;
  h: Harness;
  env: Record<string, string | undefined>;
  shape: CrmRecordShape;
  /** How the product's name and sku read in the data the Inventory mapping keeps. */
  productFields: (p: Record<string, unknown>) => [string, string];
}

async function setUp(
  shape: CrmRecordShape,
  crmMapping: object,
  dialect: InventoryDialect,
  inventoryEnv: Record<string, string>,
  productFields: Setup['productFields'],
): Promise<Setup> {
  const crm = await startCrmServer({ seed: 11, count: CUSTOMERS, products: PRODUCTS, token: 't', shape });
  const inventory = await startInventoryServer({ seed: 11, count: PRODUCTS, pageSize: 15, dialect });
  const h = await createHarness('sqlite');
  const dir = tempDir('syncctl-mapping-e2e-');
  const mappingFile = join(dir, 'crm-mapping.json');
  writeFileSync(mappingFile, JSON.stringify(crmMapping));
  const env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: 't',
    SYNCCTL_CRM_MAPPING: mappingFile,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    ...inventoryEnv,
  });
  return { crm, inventory, h, env, shape, productFields };
}

async function fetchBoth(s: Setup): Promise<void> {
  for (const [source, topic] of [
    ['crm', s.h.customerTopic],
    ['inventory', s.h.productTopic],
  ] as const) {
    const run = await runSyncctl(
      [
        '--brokers',
        testBrokers(),
        '--state',
        s.h.state,
        '--json',
        'fetch',
        '--source',
        source,
        '--publish',
        '--topic',
        topic,
        '--crm-page-size',
        '25',
      ],
      { env: s.env },
    );
    expect(run.stderr, `fetch ${source}`).not.toMatch(/error|reject/i);
    expect(run.code, `fetch ${source}`).toBe(0);
  }
  const consumed = await runSyncctl([...s.h.cliArgs(), '--once', '--batch-size', '20'], {
    env: s.env,
    timeoutMs: 120_000,
  });
  expect(consumed.stderr).toBe('');
  expect(consumed.code).toBe(0);
}

/** Live customers joined with the current products, by hand from the fixtures' stores. */
async function expectAnalyticsHoldsTheJoin(s: Setup): Promise<void> {
  const products = new Map([...s.inventory.control.store.records()].map((p) => [p.id, p]));
  const customers = [...s.crm.control.store.records()]
    .filter((c) => !c.archived)
    .sort((a, b) => a.id.localeCompare(b.id));
  const stored = await storedRecords(s.h.server);
  expect(stored.map((r) => r.customerId)).toEqual(customers.map((c) => c.id));
  for (const [i, r] of stored.entries()) {
    const c = customers[i]!;
    const record = r.record as {
      customer: unknown;
      products: { productId: string; discontinued: boolean; product: Record<string, unknown> }[];
      unresolvedProductIds: string[];
    };
    expect(record.customer).toEqual(JSON.parse(JSON.stringify(shapeCustomer(c, s.shape))));
    expect(record.products.map((p) => [p.productId, p.discontinued, ...s.productFields(p.product)])).toEqual(
      c.productIds.map((id) => {
        const p = products.get(id)!;
        return [id, p.discontinued, p.name, p.sku];
      }),
    );
    expect(record.unresolvedProductIds).toEqual([]);
  }
  await expectNothingStoredTwice(s.h.server);
}

async function tearDown(s: Setup | undefined): Promise<void> {
  await s?.h.close();
  await s?.crm.close();
  await s?.inventory.close();
}

describe('a CRM with delimited references, status deletes and epoch-ms times', () => {
  let s: Setup | undefined;
  beforeAll(async () => {
    s = await setUp(
      { refs: 'delimited', deletes: 'status', time: 'epoch-ms' },
      { deleted: 'status in ["deleted", "archived"]', productIds: '$split(Interests__c, ";")' },
      'inventory',
      {},
      (p) => [p.name as string, p.sku as string],
    );
  });
  afterAll(() => tearDown(s));

  it('lands exactly the live customers with every reference resolved, then follows changes', async () => {
    const setup = s!;
    await fetchBoth(setup);
    await expectAnalyticsHoldsTheJoin(setup);
    expect([...setup.crm.control.store.records()].some((c) => c.archived)).toBe(true);

    setup.crm.control.mutate({ update: 6, delete: 3 });
    setup.inventory.control.mutate({ update: 2, discontinue: 2 });
    await fetchBoth(setup);
    await expectAnalyticsHoldsTheJoin(setup);
  });
});

describe('a SOAP service with other element names and no "changed until" filter', () => {
  let s: Setup | undefined;
  beforeAll(async () => {
    const inventoryMapping = {
      id: 'ItemCode',
      updatedAt: 'LastChanged',
      version: 'Revision',
      deleted: 'Status = "DISCONTINUED"',
      data: '{"id": ItemCode, "sku": SKU, "name": Title, "price": UnitPrice, "stock": QtyOnHand}',
    };
    s = await setUp(
      { refs: 'objects' },
      { productIds: 'products.sku' },
      'catalog',
      {
        SYNCCTL_INVENTORY_MAPPING: JSON.stringify(inventoryMapping),
        SYNCCTL_INVENTORY_OPERATION: 'GetItems',
        SYNCCTL_INVENTORY_RECORDS_PATH: 'Items.Item',
        SYNCCTL_INVENTORY_NEXT_TOKEN_PATH: 'NextCursor',
        SYNCCTL_INVENTORY_TOKEN_PARAM: 'Cursor',
        SYNCCTL_INVENTORY_PAGE_SIZE_PARAM: 'MaxResults',
        SYNCCTL_INVENTORY_SINCE_PARAM: 'ChangedSince',
        SYNCCTL_INVENTORY_UNTIL_PARAM: '',
      },
      (p) => [p.name as string, p.sku as string],
    );
  });
  afterAll(() => tearDown(s));

  it('lands the join, and an incremental run without an until filter picks up the changes', async () => {
    const setup = s!;
    await fetchBoth(setup);
    await expectAnalyticsHoldsTheJoin(setup);

    setup.inventory.control.mutate({ update: 3, discontinue: 3 });
    setup.crm.control.mutate({ update: 4 });
    await fetchBoth(setup);
    await expectAnalyticsHoldsTheJoin(setup);
  });
});
