/**
 * The world of the cron-level CLI tests (run, status): fixture CRM and Inventory, the Analytics
 * fixture, private topics and a private state store (consume-harness.ts), and the environment a
 * `syncctl` subprocess needs to reach them.
 */
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv } from './cli.js';
import { createHarness, type Harness } from './consume-harness.js';
import { testBrokers } from './kafka.js';

export interface JobWorld {
  crm: CrmServer;
  inventory: InventoryServer;
  h: Harness;
  env: Record<string, string | undefined>;
  /** `syncctl` arguments for one command against this world's broker, state store and topics. */
  args(command: string, extra?: string[], brokers?: string): string[];
  close(): Promise<void>;
}

export interface JobWorldOptions {
  state: 'sqlite' | 'postgres';
  seed: number;
  customers: number;
  products: number;
  /** Distinct secrets per test file, so a leak is traced to its test. */
  tag: string;
  inventoryPageSize?: number;
}

export async function startJobWorld(options: JobWorldOptions): Promise<JobWorld> {
  const { seed, customers, products, tag } = options;
  const crmToken = `${tag}-crm-token-${seed}`;
  const invUser = tag;
  const invPassword = `${tag}-inventory-password-${seed}`;
  const crm = await startCrmServer({ seed, count: customers, products, token: crmToken });
  const inventory = await startInventoryServer({
    seed,
    count: products,
    user: invUser,
    password: invPassword,
    ...(options.inventoryPageSize !== undefined ? { pageSize: options.inventoryPageSize } : {}),
  });
  const h = await createHarness(options.state);
  const env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: crmToken,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: invUser,
    SYNCCTL_INVENTORY_PASSWORD: invPassword,
  });
  return {
    crm,
    inventory,
    h,
    env,
    args: (command, extra = [], brokers = testBrokers()) => [
      '--brokers',
      brokers,
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
    ],
    close: async () => {
      await h.close();
      await crm.close();
      await inventory.close();
    },
  };
}
