// npm run bench: throughput and peak memory of each stage, run as `bin/syncctl` subprocesses against
// a real Kafka broker and the fixture systems. Memory must stay flat as input grows, so every case
// runs at two (or more) sizes. BENCH_SIZES=20000,80000  BENCH_ONLY=publish,fetch-crm,…  (see README.md)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, stopBroker } from '../dist/src/sandbox/kafka-broker.js';
import {
  cleanup,
  cpuSeconds,
  measureCommand,
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
import { ratios, writeResults } from './report.mjs';

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
// Each case (and its baselines) runs this many times, interleaved, for a median with min/max.
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const resultsDir = process.env.BENCH_RESULTS ?? new URL('results', import.meta.url).pathname;
const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()) : CASES;
const pgBase = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// Above this many customers the full GET /v1/records body (~5 kB each) is sampled instead.
const fullReadBackUpTo = Number(process.env.BENCH_READBACK_FULL ?? 25000);
const unknown = only.filter((c) => !CASES.includes(c));
if (
  unknown.length > 0 ||
  sizes.some((n) => !Number.isInteger(n) || n < 1) ||
  !Number.isInteger(repeat) ||
  repeat < 1
) {
  console.error(`bench: BENCH_ONLY takes ${CASES.join(',')}; BENCH_SIZES, BENCH_REPEAT positive integers`);
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
async function timed(caseName, size, args, { count = size, env: extraEnv = {}, fixturePid, rep } = {}) {
  const before = {
    fixture: cpuSeconds(fixturePid),
    broker: cpuSeconds(broker.pid),
    all: machineBusySeconds(),
  };
  const run =
    typeof args === 'function'
      ? await args()
      : await syncctl(args, { ...env, ...extraEnv }, `${caseName}-${size}`);
  const pct = (seconds) => Math.round((100 * seconds) / run.seconds);
  const used = {
    fixture: fixturePid ? cpuSeconds(fixturePid) - before.fixture : 0,
    broker: cpuSeconds(broker.pid) - before.broker,
    all: machineBusySeconds() - before.all,
  };
  const row = {
    case: caseName,
    size,
    ...(rep ? { rep } : {}),
    seconds: Number(run.seconds.toFixed(2)),
    cpuSeconds: Number(run.cpu.toFixed(2)),
    perSecond: Math.round(count / run.seconds),
    peakRssMb: run.peakMb,
    cpuPct: pct(run.cpu),
    ...(fixturePid ? { fixtureCpuPct: pct(used.fixture) } : {}),
    brokerCpuPct: pct(used.broker),
    otherCpuPct: pct(Math.max(0, used.all - run.cpu - used.fixture - used.broker)),
  };
  return { run, summary: run.summary, row };
}

const here = new URL('.', import.meta.url).pathname;

/** Runs a baseline command (kcat, a raw kafkajs script); throws unless it exits 0. */
function baseline(command, argv, options) {
  return async () => {
    const run = await measureCommand(command, argv, env, options);
    if (run.code !== 0)
      throw new Error(`${command} ${argv.join(' ')} exited ${run.code}\nstderr: ${run.stderr}`);
    // kcat -P prints nothing: what it sent is counted in the topic afterwards.
    return { ...run, summary: run.summary ?? {} };
  };
}
const rawProducer = (topic, file, headers = false) =>
  baseline(process.execPath, [
    join(here, 'raw-producer.mjs'),
    broker.brokers,
    topic,
    file,
    ...(headers ? ['headers'] : []),
  ]);
const rawConsumer = (group, expected, topics) =>
  baseline(process.execPath, [
    join(here, 'raw-consumer.mjs'),
    broker.brokers,
    group,
    String(expected),
    ...topics,
  ]);
const kcatProduce = (topic, file) =>
  baseline('kcat', [
    '-P',
    '-q',
    '-b',
    broker.brokers,
    '-t',
    topic,
    '-l',
    file,
    '-X',
    'enable.idempotence=true',
    '-X',
    'acks=all',
  ]);
// kcat -C reads one topic per run (several need a group, -G), so topics are read one after the
// other and their times and counts added up.
const kcatConsume = (topics) => async () => {
  const total = { seconds: 0, cpu: 0, peakMb: 0, summary: { lines: 0 } };
  for (const topic of topics) {
    const argv = ['-C', '-q', '-e', '-o', 'beginning', '-b', broker.brokers, '-t', topic];
    const run = await baseline('kcat', argv, { countLines: true })();
    total.seconds += run.seconds;
    total.cpu += run.cpu;
    total.peakMb = Math.max(total.peakMb, run.peakMb);
    total.summary.lines += run.summary.lines;
  }
  return total;
};

async function ensureTopic(topic, products, dlq) {
  const topics = ['--customer-topic', topic, '--product-topic', products, '--dlq-topic', dlq];
  await syncctl(['topics', 'ensure', '--partitions', '6', ...topics], env, 'ensure');
}

/**
 * publish and its baselines on the same file: a raw kafkajs producer and kcat -P (each into its own
 * fresh topic), then syncctl publish, then kcat -C and a raw kafkajs consumer reading what publish
 * wrote. Repeated, interleaved, so each repetition's ratios compare runs minutes apart.
 */
async function benchPublish(size, t) {
  const file = join(dir, `sample-${size}.ndjson`);
  await writeSample(file, size);
  const landed = async (what, topic) =>
    expectEqual(`${what} ${size}: messages in Kafka`, (await topicMessages([topic], env))[topic], size);
  for (let rep = 1; rep <= repeat; rep++) {
    const topic = (kind) => `${t.publish}_${kind}_${rep}`;
    for (const kind of ['raw', 'rawh', 'kcat', 'syncctl']) await ensureTopic(topic(kind), t.products, t.dlq);

    let { row } = await timed('kafkajs-producer', size, rawProducer(topic('raw'), file), { rep });
    await landed('kafkajs-producer', topic('raw'));
    results.push(row);
    ({ row } = await timed('kafkajs-producer-h', size, rawProducer(topic('rawh'), file, true), { rep }));
    await landed('kafkajs-producer-h', topic('rawh'));
    results.push(row);
    ({ row } = await timed('kcat-P', size, kcatProduce(topic('kcat'), file), { rep }));
    await landed('kcat-P', topic('kcat'));
    results.push(row);

    const run = await timed('publish', size, ['publish', '--topic', topic('syncctl'), '--in', file], { rep });
    expectEqual(`publish ${size}: records`, run.summary.records, size);
    await landed('publish', topic('syncctl'));
    results.push({ ...run.row, mbPerSecond: Number((run.summary.bytes / 1e6 / run.row.seconds).toFixed(1)) });

    const kc = await timed('kcat-C', size, kcatConsume([topic('syncctl')]), { rep });
    expectEqual(`kcat-C ${size}: messages read`, kc.summary.lines, size);
    results.push(kc.row);
    const rc = await timed(
      'kafkajs-consumer',
      size,
      rawConsumer(`bench-raw-${size}-${rep}`, size, [topic('syncctl')]),
      {
        rep,
      },
    );
    expectEqual(`kafkajs-consumer ${size}: messages read`, rc.summary.messages, size);
    results.push(rc.row);
  }
  rmSync(file);
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

  if (want('publish')) await benchPublish(size, t);

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

  for (let rep = 1; rep <= (consumes.length > 0 ? repeat : 0); rep++) {
    // The two topics the consume cases read, by the clients' own consumers.
    const two = [t.customers, t.products];
    const rc = await timed(
      'kafkajs-consumer-2t',
      size,
      rawConsumer(`bench-raw2-${size}-${rep}`, 2 * size, two),
      {
        count: 2 * size,
        rep,
      },
    );
    expectEqual(`kafkajs-consumer-2t ${size}: messages read`, rc.summary.messages, 2 * size);
    results.push(rc.row);
    const kc = await timed('kcat-C-2t', size, kcatConsume(two), { count: 2 * size, rep });
    expectEqual(`kcat-C-2t ${size}: messages read`, kc.summary.lines, 2 * size);
    results.push(kc.row);
    for (const caseName of consumes) await benchConsume(caseName, rep);
  }

  async function benchConsume(caseName, rep) {
    const analytics = await startFixture('analytics', ['--token', TOKENS.analytics, '--max-batch', '1000']);
    const schema =
      caseName === 'consume-pg' ? await pgSchema(pgBase, `bench_${process.pid}_${size}_${rep}`) : undefined;
    const topics = ['--customer-topic', t.customers, '--product-topic', t.products, '--dlq-topic', t.dlq];
    const args = [
      ...(schema ? ['--state', schema.url] : state(`${caseName}-${rep}`)),
      ...['consume', '--once', '--group', `bench-${caseName}-${size}-${rep}`, ...topics],
    ];
    const { summary, row } = await timed(caseName, size, args, {
      count: 2 * size,
      env: { SYNCCTL_ANALYTICS_URL: analytics.url, SYNCCTL_ANALYTICS_TOKEN: TOKENS.analytics },
      fixturePid: analytics.pid,
      rep,
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
const ratioRows = ratios(results);
if (ratioRows.length > 0)
  console.table(
    ratioRows.map((r) => ({
      figure: `${r.subject} ÷ ${r.baseline}`,
      size: r.size,
      ...r.ratio,
      byCpu: r.cpuRatio,
    })),
  );
if (results.length > 0) {
  const error = failure?.message;
  writeResults(resultsDir, { rows: results, sizes, repeat, loadAtStart, warnings, error });
}
console.log(
  JSON.stringify({
    bench: results,
    ratios: ratioRows,
    warnings,
    ...(failure ? { error: failure.message } : {}),
  }),
);
if (failure) {
  console.error(`bench: FAILED: ${failure.stack ?? failure}`);
  process.exit(1);
}
