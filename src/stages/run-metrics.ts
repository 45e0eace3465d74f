/**
 * The metrics of one `syncctl run` in the node_exporter textfile-collector format. The file is
 * replaced whole (temp file + rename) so the collector never reads half of it.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import type { RunSummary } from './run.js';

/** Names of the per-step counts in the `kind` label (snake_case, as Prometheus labels go). */
const KINDS: Record<string, string> = {
  fetched: 'fetched',
  published: 'published',
  rejected: 'rejected',
  consumed: 'consumed',
  delivered: 'delivered',
  deadLettered: 'dead_lettered',
  exported: 'exported',
  uploaded: 'uploaded',
};

/**
 * The registry for a finished run. The last success comes from the run history, so a failing run
 * does not reset it.
 */
export function runRegistry(summary: RunSummary): Registry {
  const registry = new Registry();
  const job = { job: summary.job };
  const records = new Gauge({
    name: 'syncctl_run_records',
    help: 'Records handled by the last run, by stage, source (all for consume) and kind',
    labelNames: ['job', 'stage', 'source', 'kind'] as const,
    registers: [registry],
  });
  const retries = new Gauge({
    name: 'syncctl_run_retries',
    help: 'Request retries in the last run, by stage and source',
    labelNames: ['job', 'stage', 'source'] as const,
    registers: [registry],
  });
  const lag = new Gauge({
    name: 'syncctl_run_consumer_lag',
    help: 'Messages on the data topics not committed by the consumer group when the last run ended',
    labelNames: ['job'] as const,
    registers: [registry],
  });
  const stepExit = new Gauge({
    name: 'syncctl_run_step_exit_code',
    help: 'Exit code of each step of the last run',
    labelNames: ['job', 'step'] as const,
    registers: [registry],
  });
  for (const step of summary.steps) {
    const stage = step.name.split(':')[0] as string;
    const source = step.source ?? 'all';
    stepExit.set({ ...job, step: step.name }, step.exitCode);
    for (const [key, kind] of Object.entries(KINDS)) {
      const value = step.counts[key];
      if (value !== undefined) records.set({ ...job, stage, source, kind }, value);
    }
    if (step.counts.retries !== undefined) retries.set({ ...job, stage, source }, step.counts.retries);
    if (step.counts.lagLeft !== undefined) lag.set(job, step.counts.lagLeft);
  }
  new Gauge({
    name: 'syncctl_run_duration_seconds',
    help: 'How long the last run took',
    labelNames: ['job'] as const,
    registers: [registry],
  }).set(job, summary.durationMs / 1000);
  new Gauge({
    name: 'syncctl_run_exit_code',
    help: 'Exit code of the last run (0 ok, 3 rejects or dead letters, 4 locked, 75 temporary failure)',
    labelNames: ['job'] as const,
    registers: [registry],
  }).set(job, summary.exitCode);
  new Gauge({
    name: 'syncctl_run_timestamp_seconds',
    help: 'When the last run ended',
    labelNames: ['job'] as const,
    registers: [registry],
  }).set(job, Date.parse(summary.endedAt) / 1000);
  if (summary.lastSuccessAt) {
    new Gauge({
      name: 'syncctl_last_success_timestamp_seconds',
      help: 'When a run of the job last finished (exit 0 or 3)',
      labelNames: ['job'] as const,
      registers: [registry],
    }).set(job, Date.parse(summary.lastSuccessAt) / 1000);
  }
  return registry;
}

/** Writes the registry to path atomically (a temp file in the same directory, then rename). */
export async function writeMetricsFile(path: string, registry: Registry): Promise<void> {
  const text = await registry.metrics();
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
