import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { CrmServer } from '../../fixtures/crm/server.js';
import type { StatusReport } from '../../src/stages/status.js';
import { openDb } from '../../src/state/db.js';
import { Runs } from '../../src/state/runs.js';
import { runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { storedRecords, type Harness } from '../helpers/consume-harness.js';
import { startJobWorld, type JobWorld } from '../helpers/job-world.js';
import { tempDir } from '../helpers/temp.js';

const CUSTOMERS = 120;
const PRODUCTS = 30;

let world: JobWorld;
let crm: CrmServer;
let h: Harness;
let env: Record<string, string | undefined>;
const children: Child[] = [];

beforeAll(async () => {
  world = await startJobWorld({
    state: 'sqlite',
    seed: 5,
    customers: CUSTOMERS,
    products: PRODUCTS,
    tag: 'run',
    inventoryPageSize: 10,
  });
  ({ crm, h, env } = world);
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
});

afterAll(async () => {
  await world?.close();
});

function runArgs(...extra: string[]): string[] {
  return world.args('run', ['--job', 'nightly', '--session-timeout', '6', ...extra]);
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the Prometheus text format: every line is HELP, TYPE or a well-formed sample. */
function parsePrometheus(text: string): Sample[] {
  expect(text.endsWith('\n')).toBe(true);
  const samples: Sample[] = [];
  const typed = new Set<string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    const help = new RegExp(`^# HELP (${name}) .+$`).exec(line);
    const type = new RegExp(`^# TYPE (${name}) (gauge|counter|untyped|histogram|summary)$`).exec(line);
    // The format ignores empty lines (prom-client separates metrics with one).
    if (help || line === '') continue;
    if (type) {
      typed.add(type[1]!);
      continue;
    }
    const sample = new RegExp(
      `^(${name})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*",?)*)\\})? (\\S+)$`,
    ).exec(line);
    if (!sample) throw new Error(`not a Prometheus text line: ${JSON.stringify(line)}`);
    const [, metric, labelText, valueText] = sample;
    expect(typed.has(metric!)).toBe(true);
    const value = Number(valueText);
    expect(Number.isFinite(value)).toBe(true);
    const labels: Record<string, string> = {};
    for (const m of (labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1]!] = m[2]!;
    samples.push({ name: metric!, labels, value });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

it('fetches both sources, consumes, delivers to Analytics and writes metrics equal to its summary', async () => {
  const metricsFile = join(tempDir('syncctl-run-metrics-'), 'syncctl.prom');
  const args = [...runArgs('--metrics-file', metricsFile), '--json'];
  let run = await runSyncctl(args, { env });
  // The first group join after the broker starts can meet "The coordinator is loading" (exit 75):
  // issue 11 item 7, not this command's concern. A rerun continues where that run stopped.
  if (run.code === 75 && /coordinator is loading/.test(run.stderr)) run = await runSyncctl(args, { env });
  // The start-up retry of a loading coordinator (item 7) says so on stderr; nothing else may.
  expect(run.stderr.replace(/^syncctl: warning: the group coordinator is not ready.*\n/gm, '')).toBe('');
  expect(run.code).toBe(0);
  const summary = JSON.parse(run.stdout) as {
    runId: string;
    exitCode: number;
    outcome: string;
    durationMs: number;
    steps: { name: string; outcome: string; counts: Record<string, number> }[];
  };
  expect(summary.outcome).toBe('ok');
  expect(summary.steps.map((s) => [s.name, s.outcome])).toEqual([
    ['fetch:crm', 'ok'],
    ['fetch:inventory', 'ok'],
    ['consume', 'ok'],
  ]);
  const [crmStep, invStep, consumeStep] = summary.steps;
  expect(crmStep!.counts.published).toBe(CUSTOMERS);
  expect(invStep!.counts.published).toBe(PRODUCTS);
  expect(consumeStep!.counts.consumed).toBe(CUSTOMERS + PRODUCTS);
  // The fixture's seed includes deleted customers: Analytics holds the live ones.
  const stored = (await storedRecords(h.server)).length;
  expect(stored).toBeGreaterThan(CUSTOMERS / 2);
  expect(consumeStep!.counts.delivered).toBe(stored);

  const samples = parsePrometheus(readFileSync(metricsFile, 'utf8'));
  const records = (stage: string, source: string, kind: string) =>
    value(samples, 'syncctl_run_records', { job: 'nightly', stage, source, kind });
  expect(records('fetch', 'crm', 'fetched')).toBe(crmStep!.counts.fetched);
  expect(records('fetch', 'crm', 'published')).toBe(CUSTOMERS);
  expect(records('fetch', 'inventory', 'published')).toBe(PRODUCTS);
  expect(records('fetch', 'crm', 'rejected')).toBe(0);
  expect(records('consume', 'all', 'consumed')).toBe(consumeStep!.counts.consumed);
  expect(records('consume', 'all', 'delivered')).toBe(stored);
  expect(records('consume', 'all', 'dead_lettered')).toBe(0);
  expect(value(samples, 'syncctl_run_retries', { stage: 'fetch', source: 'crm' })).toBe(
    crmStep!.counts.retries,
  );
  expect(value(samples, 'syncctl_run_exit_code', { job: 'nightly' })).toBe(0);
  expect(value(samples, 'syncctl_run_duration_seconds')).toBeCloseTo(summary.durationMs / 1000, 3);
  const lastSuccess = value(samples, 'syncctl_last_success_timestamp_seconds', { job: 'nightly' });
  expect(Math.abs(lastSuccess! * 1000 - Date.now())).toBeLessThan(120_000);
});

it('--steps consume,export uploads the unified view as CSV, with its counts in the summary and metrics', async () => {
  const metricsFile = join(tempDir('syncctl-run-export-'), 'syncctl.prom');
  const uploadsBefore = h.server.store.uploads.length;
  const run = await runSyncctl(
    [...runArgs('--steps', 'consume,export', '--metrics-file', metricsFile), '--json'],
    {
      env,
    },
  );
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const summary = JSON.parse(run.stdout) as {
    steps: { name: string; outcome: string; counts: Record<string, number>; summary: { rows: number } }[];
  };
  expect(summary.steps.map((s) => [s.name, s.outcome])).toEqual([
    ['consume', 'ok'],
    ['export', 'ok'],
  ]);
  const exportStep = summary.steps[1]!;
  const uploads = h.server.store.uploads.slice(uploadsBefore);
  expect(uploads).toHaveLength(1);
  expect(exportStep.counts.exported).toBeGreaterThan(CUSTOMERS / 2);
  expect(exportStep.counts.exported).toBe(exportStep.summary.rows);
  expect(uploads[0]!.rows).toBe(exportStep.counts.exported);
  expect(exportStep.counts.uploaded).toBe(exportStep.counts.exported);

  const samples = parsePrometheus(readFileSync(metricsFile, 'utf8'));
  const records = (kind: string) =>
    value(samples, 'syncctl_run_records', { job: 'nightly', stage: 'export', source: 'all', kind });
  expect(records('exported')).toBe(exportStep.counts.exported);
  expect(records('uploaded')).toBe(exportStep.counts.exported);
  expect(value(samples, 'syncctl_run_step_exit_code', { step: 'export' })).toBe(0);

  const text = await runSyncctl(runArgs('--steps', 'export'), { env });
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/== export: ok \(exit 0\)\nexported \d+ row\(s\) of the unified view/);
  expect(text.stdout).toMatch(/already uploaded \(acknowledged, not stored again\)/);
});

it('a second run exits 4 naming the holder; after the holder is SIGKILLed the next run takes over', async () => {
  // Slow pages keep the first run inside its fetch step.
  crm.control.setFaults({ latencyMs: 10_000 });
  const before = crm.control.stats().requests;
  const first = startSyncctl(runArgs(), env);
  children.push(first);
  let holder = '';
  try {
    await waitFor('the first run to fetch', () => crm.control.stats().requests > before, 30_000);
    const second = await runSyncctl(runArgs(), { env });
    expect(second.code).toBe(4);
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
  // The dead run's row still says running; status knows better (its lock is gone) and says so.
  expect(await outcomeOf(holder)).toBe('running');
  const status = await runSyncctl(['--state', h.state, '--brokers', '127.0.0.1:1', 'status', '--json'], {
    env,
  });
  const shown = (JSON.parse(status.stdout) as StatusReport).state.runs.find((r) => r.id === holder);
  expect(shown?.outcome).toBe('killed');

  const third = await runSyncctl([...runArgs(), '--json'], { env });
  expect(third.stderr).toMatch(/took over stale lock run:nightly from run [0-9a-f-]{36} .*pid \d+ is gone/);
  expect(third.stderr).toContain(`run ${holder} of job nightly`);
  expect(third.code).toBe(0);
  expect((JSON.parse(third.stdout) as { outcome: string }).outcome).toBe('ok');
  // The next run, holding the lock, wrote it down: the history no longer has a run running forever.
  expect(await outcomeOf(holder)).toBe('killed');
});

/** The run's outcome as stored (not as status shows it). */
async function outcomeOf(id: string): Promise<string | undefined> {
  const db = await openDb(h.state);
  try {
    return (await (await Runs.open(db)).recent(100)).find((r) => r.id === id)?.outcome;
  } finally {
    await db.close();
  }
}
