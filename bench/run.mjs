// npm run bench: throughput and peak memory of each stage against a real Kafka broker.
// Memory must stay flat as input grows, so every case runs at two sizes.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startBroker, stopBroker } from '../dist/src/sandbox/kafka-broker.js';
import { makeEnvelope } from '../dist/src/records/envelope.js';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'syncctl');
const sizes = (process.env.BENCH_SIZES ?? '100000,400000').split(',').map(Number);

async function writeSample(path, count) {
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    const line = JSON.stringify(
      makeEnvelope({
        source: 'crm',
        id: `C${String(i % 50000).padStart(7, '0')}`,
        op: 'upsert',
        data: {
          name: `Customer ${i} — Zoë 山田`,
          seq: i,
          notes: 'x'.repeat(200),
          productIds: ['P000001', 'P000002'],
        },
        sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      }),
    );
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Runs bin/syncctl, sampling the child's peak RSS (VmHWM) from /proc while it runs. */
async function measure(args, env) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  let peakKb = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      /* exited between samples */
    }
  }, 50);
  const [code] = await once(child, 'close');
  clearInterval(timer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { code, seconds, peakMb: Math.round(peakKb / 1024), stdout };
}

const dir = mkdtempSync(join(tmpdir(), 'syncctl-bench-'));
const broker = await startBroker({ dir: join(dir, 'kafka'), heap: '1g' });
const results = [];
try {
  const env = { SYNCCTL_BROKERS: broker.brokers, SYNCCTL_STATE_DIR: join(dir, 'state') };
  const ensure = await measure(['--json', 'topics', 'ensure', '--partitions', '6'], env);
  if (ensure.code !== 0) throw new Error('topics ensure failed');
  for (const size of sizes) {
    const file = join(dir, `sample-${size}.ndjson`);
    await writeSample(file, size);
    const run = await measure(['--json', 'publish', '--topic', 'customer_data', '--in', file], env);
    const summary = JSON.parse(run.stdout);
    if (run.code !== 0 || summary.records !== size)
      throw new Error(`publish of ${size} failed: ${run.stdout}`);
    results.push({
      case: 'publish',
      records: size,
      seconds: Number(run.seconds.toFixed(2)),
      recordsPerSecond: Math.round(size / run.seconds),
      mbPerSecond: Number((summary.bytes / 1e6 / run.seconds).toFixed(1)),
      peakRssMb: run.peakMb,
    });
    rmSync(file);
  }
} finally {
  await stopBroker(broker.pid);
  rmSync(dir, { recursive: true, force: true });
}
console.table(results);
console.log(JSON.stringify({ bench: results }));
