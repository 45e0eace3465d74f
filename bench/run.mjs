// npm run bench: throughput and peak memory of each stage, run as `bin/syncctl` subprocesses against
// a real Kafka broker and the fixture systems. Memory must stay flat as input grows, so every case
// runs at two (or more) sizes. BENCH_SIZES=20000,80000  BENCH_ONLY=publish,fetch-crm,…  (see README.md)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, stopBroker } from '../dist/src/sandbox/kafka-broker.js';
import {
  cleanup,
  cpuSeconds,
  machineBusySeconds,
  expectEqual,
  ndjsonStats,
  pgSchema,
  startFixture,
  syncctl,
  topicMessages,
  track,
} from './lib.mjs';
import {
  SEED,
  expectedData,
  memoryWarnings,
  verifyAnalytics,
  verifyConsume,
  verifyFetch,
  writeSample,
} from './verify.mjs';
import { seedExportState } from './export-seed.mjs';

const CASES = [
  'publish',
  'fetch-crm',
  'fetch-inventory',
  'fetch-crm-file',
  'consume',
  'consume-pg',
  'export-csv',
];
const sizes = (process.env.BENCH_SIZES ?? '20000,80000').split(',').map(Number);
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()) : CASES;
const pgBase = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// Above this many customers the full GET /v1/records body (~5 kB each) is sampled instead.
const fullReadBackUpTo = Number(process.env.BENCH_READBACK_FULL ?? 25000);
const unknown = only.filter((c) => !CASES.includes(c));
if (unknown.length > 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error(`bench: BENCH_ONLY takes ${CASES.join(',')}; BENCH_SIZES positive integers`);
  process.exit(2);
}
const want = (c) => only.includes(c);
const TOKENS = { crm: 'bench-crm-token', user: 'bench', password: 'bench-pw', analytics: 'bench-an-token' };

const dir = mkdtempSync(join(tmpdir(), 'syncctl-bench-'));
// Registered first so that it runs last, after every process using it has stopped.
track(() => rmSync(dir, { recursive: true, force: true }));
const results = [];
let broker;
let env;

/**
 * Runs one measured command. The row also says how much CPU the fixture and the broker used
 * meanwhile, and how much went to anything else on the machine (other work skews the numbers).
 */
async function timed(caseName, size, args, { count = size, env: extraEnv = {}, fixturePid } = {}) {
  const before = {
    fixture: cpuSeconds(fixturePid),
    broker: cpuSeconds(broker.pid),
    all: machineBusySeconds(),
  };
  const run = await syncctl(args, { ...env, ...extraEnv }, `${caseName}-${size}`);
  const pct = (seconds) => Math.round((100 * seconds) / run.seconds);
  const used = {
    fixture: fixturePid ? cpuSeconds(fixturePid) - before.fixture : 0,
    broker: cpuSeconds(broker.pid) - before.broker,
    all: machineBusySeconds() - before.all,
  };
  const row = {
    case: caseName,
    size,
    seconds: Number(run.seconds.toFixed(2)),
    perSecond: Math.round(count / run.seconds),
    peakRssMb: run.peakMb,
    cpuPct: pct(run.cpu),
    ...(fixturePid ? { fixtureCpuPct: pct(used.fixture) } : {}),
    brokerCpuPct: pct(used.broker),
    otherCpuPct: pct(Math.max(0, used.all - run.cpu - used.fixture - used.broker)),
  };
  return { run, summary: run.summary, row };
}

async function benchSize(size, smallest) {
  const t = {
    customers: `bench_customers_${size}`,
    products: `bench_products_${size}`,
    dlq: `bench_dlq_${size}`,
    publish: `bench_publish_${size}`,
  };
  for (const customerTopic of [t.customers, t.publish]) {
    const topics = ['--customer-topic', customerTopic, '--product-topic', t.products, '--dlq-topic', t.dlq];
    await syncctl(['topics', 'ensure', '--partitions', '6', ...topics], env, 'ensure');
  }

  if (want('publish')) {
    const file = join(dir, `sample-${size}.ndjson`);
    await writeSample(file, size);
    const { summary, row } = await timed('publish', size, ['publish', '--topic', t.publish, '--in', file]);
    expectEqual(`publish ${size}: records`, summary.records, size);
    expectEqual(
      `publish ${size}: messages in Kafka`,
      (await topicMessages([t.publish], env))[t.publish],
      size,
    );
    results.push({ ...row, mbPerSecond: Number((summary.bytes / 1e6 / row.seconds).toFixed(1)) });
    rmSync(file);
  }

  if (want('export-csv')) {
    const state = join(dir, `export-${size}.db`);
    const out = join(dir, `export-${size}.csv`);
    await seedExportState(state, size);
    const { summary, row } = await timed('export-csv', size, ['--state', state, 'export-csv', '--out', out]);
    expectEqual(`export-csv ${size}: rows`, summary.rows, size);
    expectEqual(`export-csv ${size}: bytes in the file`, statSync(out).size, summary.bytes);
    results.push({ ...row, mbPerSecond: Number((summary.bytes / 1e6 / row.seconds).toFixed(1)) });
    rmSync(out);
    rmSync(state, { force: true });
  }

  const consumes = ['consume', ...(smallest ? ['consume-pg'] : [])].filter(want);
  if (!['fetch-crm', 'fetch-inventory', 'fetch-crm-file', ...consumes].some(want)) return;
  const expected = expectedData(size);
  const n = String(size);
  const crm = await startFixture('crm', [
    ...['--seed', String(SEED), '--count', n, '--products', n, '--token', TOKENS.crm, '--page-size', '500'],
  ]);
  const inventory = await startFixture('inventory', [
    ...['--seed', String(SEED), '--count', n, '--user', TOKENS.user, '--password', TOKENS.password],
    ...['--page-size', '500'],
  ]);
  const sources = {
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: TOKENS.crm,
    SYNCCTL_INVENTORY_WSDL: `${inventory.url}?wsdl`,
    SYNCCTL_INVENTORY_USER: TOKENS.user,
    SYNCCTL_INVENTORY_PASSWORD: TOKENS.password,
  };
  const state = (name) => ['--state', join(dir, `${name}-${size}.db`)];

  // The consume cases read what these two fetches published, so they run (unreported) when only a
  // consume case was asked for.
  const publishing = [
    ['fetch-crm', 'crm', t.customers, crm.pid, expected.archived],
    ['fetch-inventory', 'inventory', t.products, inventory.pid, expected.discontinued],
  ];
  for (const [name, source, topic, fixturePid, deletes] of publishing) {
    if (!want(name) && consumes.length === 0) continue;
    const args = [...state(name), 'fetch', '--source', source, '--full', '--publish', '--topic', topic];
    const { summary, row } = await timed(name, size, [...args, `--${source}-page-size`, '500'], {
      env: sources,
      fixturePid,
    });
    verifyFetch(`${name} ${size}`, summary, size, deletes);
    expectEqual(`${name} ${size}: messages in Kafka`, (await topicMessages([topic], env))[topic], size);
    if (want(name)) results.push(row);
  }
  if (want('fetch-crm-file')) {
    const out = join(dir, `customers-${size}.ndjson`);
    const args = [...state('fetch-crm-file'), 'fetch', '--source', 'crm', '--full', '--out', out];
    const { summary, row } = await timed('fetch-crm-file', size, [...args, '--crm-page-size', '500'], {
      env: sources,
      fixturePid: crm.pid,
    });
    verifyFetch(`fetch-crm-file ${size}`, summary, size, expected.archived);
    const lines = await ndjsonStats(out);
    expectEqual(`fetch-crm-file ${size}: lines in the file`, lines.lines, size);
    expectEqual(`fetch-crm-file ${size}: distinct ids in the file`, lines.ids, size);
    results.push({ ...row, mbPerSecond: Number((statSync(out).size / 1e6 / row.seconds).toFixed(1)) });
    rmSync(out);
  }
  await crm.stop();
  await inventory.stop();

  for (const caseName of consumes) {
    const analytics = await startFixture('analytics', ['--token', TOKENS.analytics, '--max-batch', '1000']);
    const schema =
      caseName === 'consume-pg' ? await pgSchema(pgBase, `bench_${process.pid}_${size}`) : undefined;
    const topics = ['--customer-topic', t.customers, '--product-topic', t.products, '--dlq-topic', t.dlq];
    const args = [
      ...(schema ? ['--state', schema.url] : state(caseName)),
      ...['consume', '--once', '--group', `bench-${caseName}-${size}`, ...topics],
    ];
    const { summary, row } = await timed(caseName, size, args, {
      count: 2 * size,
      env: { SYNCCTL_ANALYTICS_URL: analytics.url, SYNCCTL_ANALYTICS_TOKEN: TOKENS.analytics },
      fixturePid: analytics.pid,
    });
    verifyConsume(`${caseName} ${size}`, summary, 2 * size);
    const landed = await verifyAnalytics(
      `${caseName} ${size}`,
      analytics.url,
      TOKENS.analytics,
      summary,
      expected,
      fullReadBackUpTo,
    );
    results.push({ ...row, delivered: summary.delivered, liveAtAnalytics: landed.live });
    await analytics.stop();
    await schema?.drop();
  }
}

let failure;
try {
  broker = await startBroker({ dir: join(dir, 'kafka'), heap: '1g' });
  track(() => stopBroker(broker.pid));
  env = { SYNCCTL_BROKERS: broker.brokers, SYNCCTL_STATE_DIR: join(dir, 'state') };
  const smallest = Math.min(...sizes);
  for (const size of sizes) await benchSize(size, size === smallest);
} catch (err) {
  failure = err;
} finally {
  await cleanup();
}
if (results.length > 0) console.table(results);
const warnings = memoryWarnings(results, CASES);
for (const w of warnings) console.error(`bench: warning: ${w}`);
console.log(JSON.stringify({ bench: results, warnings, ...(failure ? { error: failure.message } : {}) }));
if (failure) {
  console.error(`bench: FAILED: ${failure.stack ?? failure}`);
  process.exit(1);
}
