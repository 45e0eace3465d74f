/**
 * Everything a consume test needs: private topics and group, a private state store (SQLite file or
 * PostgreSQL schema), the Analytics fixture, and read-back helpers that go through its HTTP API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { expect } from 'vitest';
import {
  startAnalyticsServer,
  type AnalyticsServer,
  type AnalyticsServerOptions,
} from '../../fixtures/analytics/server.js';
import { createAnalyticsSink, type AnalyticsConfig } from '../../src/connectors/analytics-sink.js';
import { consume, type ConsumeOptions, type ConsumeSummary } from '../../src/stages/consume.js';
import { openDb } from '../../src/state/db.js';
import type { ExpectedRecord } from './consume-data.js';
import { createTopic, testBrokers, testKafka, uniqueName } from './kafka.js';
import { createPgSchema } from './postgres.js';

export type StateKind = 'sqlite' | 'postgres';
export const ANALYTICS_TOKEN = 'consume-test-token-5f1e';

/** Where a harness's topics live: the shared test broker, or a test's own cluster (kafka-cluster.ts). */
export interface HarnessKafka {
  /** Bootstrap servers, comma-separated. */
  brokers: string;
  kafka(): Kafka;
  createTopic(name: string, partitions: number): Promise<void>;
}

const TEST_BROKER: HarnessKafka = {
  brokers: '',
  kafka: testKafka,
  createTopic,
};

export interface Harness {
  /** Bootstrap servers the harness's topics are on. */
  brokers: string;
  kafka(): Kafka;
  customerTopic: string;
  productTopic: string;
  dlqTopic: string;
  group: string;
  state: string;
  server: AnalyticsServer;
  analytics: AnalyticsConfig;
  /** Runs the consume stage in this process. */
  run(options?: Partial<ConsumeOptions>): Promise<ConsumeSummary>;
  /** The group and topic flags of `consume` and `run` for this harness. */
  topicArgs(): string[];
  /** CLI flags and environment pointing `bin/syncctl consume` at this harness. */
  cliArgs(): string[];
  cliEnv(): Record<string, string>;
  close(): Promise<void>;
}

export async function createHarness(
  kind: StateKind,
  serverOptions: AnalyticsServerOptions = {},
  on: HarnessKafka = TEST_BROKER,
): Promise<Harness> {
  const brokers = on.brokers || testBrokers();
  const customerTopic = uniqueName('customers');
  const productTopic = uniqueName('products');
  const dlqTopic = uniqueName('dlq');
  await Promise.all([
    on.createTopic(customerTopic, 3),
    on.createTopic(productTopic, 3),
    on.createTopic(dlqTopic, 1),
  ]);
  const cleanups: (() => Promise<void>)[] = [];
  let state: string;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'syncctl-consume-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    state = join(dir, 'state.db');
  } else {
    const schema = await createPgSchema('consume');
    cleanups.push(schema.drop);
    state = schema.url;
  }
  const server = await startAnalyticsServer({ token: ANALYTICS_TOKEN, ...serverOptions });
  cleanups.push(() => server.close());
  const analytics: AnalyticsConfig = {
    url: server.url,
    token: ANALYTICS_TOKEN,
    timeoutMs: 3_000,
    retries: 6,
    batchSize: 500,
    backoffMs: 20,
    backoffLimitMs: 200,
    maxRetryAfterMs: 5_000,
  };
  const group = uniqueName('group');
  const topicArgs = () => [
    '--group',
    group,
    '--customer-topic',
    customerTopic,
    '--product-topic',
    productTopic,
    '--dlq-topic',
    dlqTopic,
  ];
  return {
    brokers,
    kafka: on.kafka,
    customerTopic,
    productTopic,
    dlqTopic,
    group,
    state,
    server,
    analytics,
    async run(options = {}) {
      const db = await openDb(state);
      const sink = createAnalyticsSink(analytics);
      try {
        return await consume({
          kafka: on.kafka(),
          brokers: brokers.split(','),
          db,
          sink,
          group,
          customerTopic,
          productTopic,
          deadLetterTopic: dlqTopic,
          once: true,
          batchSize: 50,
          idleTimeoutMs: 5_000,
          ...options,
        });
      } finally {
        await sink.close();
        await db.close();
      }
    },
    topicArgs,
    cliArgs() {
      return ['--brokers', brokers, '--state', state, 'consume', ...topicArgs()];
    },
    cliEnv() {
      return {
        SYNCCTL_ANALYTICS_URL: server.url,
        SYNCCTL_ANALYTICS_TOKEN: ANALYTICS_TOKEN,
        SYNCCTL_ANALYTICS_TIMEOUT_MS: '3000',
        SYNCCTL_ANALYTICS_BACKOFF_MS: '20',
      };
    },
    async close() {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    },
  };
}

/**
 * What the consume stage has merged so far, read from its state store by a second connection while
 * it runs (SQLite in WAL mode allows that): live customers and products, and dirty customers.
 */
export async function mergedCounts(
  state: string,
): Promise<{ customers: number; products: number; dirty: number }> {
  const db = await openDb(state);
  try {
    const count = async (table: string) => {
      try {
        return Number(
          (await db.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.n ?? 0,
        );
      } catch {
        return 0; // the stage has not created its tables yet
      }
    };
    return {
      customers: await count('consume_customers'),
      products: await count('consume_products'),
      dirty: await count('consume_dirty'),
    };
  } finally {
    await db.close();
  }
}

/** Messages the harness's group has committed on both data topics (0 when nothing is committed). */
export async function committedMessages(h: Harness): Promise<number> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    let total = 0;
    for (const { partitions } of await admin.fetchOffsets({
      groupId: h.group,
      topics: [h.customerTopic, h.productTopic],
    })) {
      for (const p of partitions) if (Number(p.offset) > 0) total += Number(p.offset);
    }
    return total;
  } finally {
    await admin.disconnect();
  }
}

/** How often each customer was written at Analytics. */
export function writesPerCustomer(log: LogEntry[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of log) out.set(e.customerId, (out.get(e.customerId) ?? 0) + 1);
  return out;
}

export interface StoredRecord {
  customerId: string;
  key: string;
  record: Record<string, unknown> | null;
}
export interface LogEntry {
  seq: number;
  key: string;
  batchKey: string;
  customerId: string;
  op: 'upsert' | 'delete';
  record?: Record<string, unknown> | null;
}

async function getJson<T>(server: AnalyticsServer, path: string): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${ANALYTICS_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** GET /v1/records: what Analytics holds now, one entry per live customer. */
export async function storedRecords(server: AnalyticsServer): Promise<StoredRecord[]> {
  return (await getJson<{ records: StoredRecord[] }>(server, '/v1/records')).records;
}

/** GET /v1/log?full=1: every write Analytics made, in order. */
export async function writeLog(server: AnalyticsServer, since = 0): Promise<LogEntry[]> {
  return (await getJson<{ entries: LogEntry[] }>(server, `/v1/log?full=1&since=${since}`)).entries;
}

/** Analytics holds exactly the expected join: same customers, same fields, products and unresolved ids. */
export async function expectViewMatches(
  server: AnalyticsServer,
  expected: Map<string, ExpectedRecord>,
): Promise<void> {
  const stored = await storedRecords(server);
  expect(stored.map((r) => r.customerId)).toEqual([...expected.keys()]);
  for (const r of stored) {
    const record = r.record as Record<string, unknown>;
    const want = expected.get(r.customerId) as ExpectedRecord;
    expect({
      customerId: record.customerId,
      customer: record.customer,
      products: record.products,
      unresolvedProductIds: record.unresolvedProductIds,
    }).toEqual(want);
    expect((record.sourceVersions as { customer: { sourceVersion: number } }).customer.sourceVersion).toBe(
      want.customer.version,
    );
  }
}

/**
 * Nothing stored twice: every record key appears once in the write log, and no customer has the
 * same unified record (or delete) stored twice in a row under different keys.
 */
export async function expectNothingStoredTwice(server: AnalyticsServer): Promise<LogEntry[]> {
  const log = await writeLog(server);
  const keys = log.map((e) => e.key);
  expect(new Set(keys).size).toBe(keys.length);
  const last = new Map<string, string>();
  for (const e of log) {
    const content = JSON.stringify([e.op, e.record ?? null]);
    expect(last.get(e.customerId), `customer ${e.customerId} stored the same content twice`).not.toBe(
      content,
    );
    last.set(e.customerId, content);
  }
  return log;
}
