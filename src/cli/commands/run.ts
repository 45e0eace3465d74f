import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.js';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  CRM_SETTINGS,
  FETCH_SETTINGS,
  INVENTORY_SETTINGS,
  LIMIT_SETTINGS,
  RUN_SETTINGS,
  TOPIC_SETTINGS,
} from '../../settings/index.js';
import { parseTime, parseWindowSpec } from '../../stages/fetch/plan.js';
import type { FetchMode, FetchSummary } from '../../stages/fetch.js';
import type { ConsumeSummary } from '../../stages/consume.js';
import type { RunStepKind, RunSummary } from '../../stages/run.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';
import type { ProgressLine } from '../spinner.js';
import type { ExportCsvSummary } from '../../stages/export-csv.js';
import { describeSummary as describeConsume } from './consume.js';
import { describeSummary as describeExport } from './export-csv.js';
import { describeSummary as describeFetch } from './fetch.js';

const HELP = `
Runs the job's steps in order under the lock run:<job> (exit 4 while another run holds it; the lock
of a run that died is taken over by the next one): fetch crm and inventory into Kafka (incremental,
or the --since/--until backfill), then consume --once, then with --steps …,export export-csv
--upload (the whole view, shaped by the export-csv settings of the profile and environment: entity,
columns, out …). Each step also takes the lock it takes when
run alone (fetch:<source>, consume:<group>). A failing step stops the run.

Exit code: the first failing step's code; else 3 if records were rejected or dead-lettered; else 0.
Every run is recorded in the state store (see \`syncctl status\`).

Examples:
  $ syncctl run --job nightly --metrics-file /var/lib/node_exporter/textfile/syncctl.prom
  $ syncctl run --steps consume --json
  $ syncctl run --steps fetch,consume,export   # and upload the unified view as CSV to Analytics
  $ syncctl run --since 2024-01-01 --until 2024-04-01 --window 1d   # backfill both sources, then consume
Cron:
  15 2 * * *  syncctl run --job nightly --quiet --metrics-file /var/lib/node_exporter/textfile/syncctl.prom`;

function parseSteps(text: string, RUN_STEPS: readonly RunStepKind[]): RunStepKind[] {
  const steps = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const step of steps) {
    if (!(RUN_STEPS as readonly string[]).includes(step)) {
      throw new UsageError(`--steps: unknown step ${step} (choose from ${RUN_STEPS.join(', ')})`);
    }
  }
  if (steps.length === 0) throw new UsageError('--steps is empty');
  return RUN_STEPS.filter((s) => steps.includes(s));
}

function describeRun(s: RunSummary): string {
  const lines: string[] = [];
  for (const step of s.steps) {
    lines.push(`== ${step.name}: ${step.outcome} (exit ${step.exitCode})`);
    if (step.summary && step.name === 'consume') lines.push(describeConsume(step.summary as ConsumeSummary));
    else if (step.summary && step.name === 'export')
      lines.push(describeExport(step.summary as ExportCsvSummary));
    else if (step.summary) lines.push(describeFetch(step.summary as FetchSummary));
    else if (step.error) lines.push(step.error.message);
  }
  lines.push(
    `run ${s.runId} (job ${s.job}): ${s.outcome}, exit ${s.exitCode}, ${s.steps.length} step(s) in ${(s.durationMs / 1000).toFixed(1)} s`,
  );
  return lines.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('run')
    .description(
      'the whole job under a lock: fetch both sources into Kafka, consume --once, optionally export-csv --upload',
    );
  addSettingOptions(command, RUN_SETTINGS);
  addSettingOptions(command, FETCH_SETTINGS, ['since', 'until', 'window', 'concurrency']);
  addSettingOptions(command, CONSUME_SETTINGS, [
    'group',
    'batchSize',
    'productRefPath',
    'idleTimeout',
    'shutdownTimeout',
    'sessionTimeout',
    'maxDeliveryDelay',
  ]);
  addSettingOptions(command, LIMIT_SETTINGS);
  addSettingOptions(command, TOPIC_SETTINGS);
  addSettingOptions(command, CRM_SETTINGS);
  addSettingOptions(command, INVENTORY_SETTINGS);
  addSettingOptions(command, ANALYTICS_SETTINGS)
    .addHelpText('after', HELP)
    .action(
      action(async (ctx, _opts, cmd) => {
        const { runRegistry, writeMetricsFile } = await import('../../stages/run-metrics.js');
        const { RUN_STEPS, runJob } = await import('../../stages/run.js');
        const { stopOnSignals } = await import('../signals.js');
        const { startProgress } = await import('../spinner.js');
        const { job, steps: stepsText, metricsFile } = ctx.resolve(RUN_SETTINGS);
        const { since, until, window, concurrency } = ctx.resolve(FETCH_SETTINGS);
        const steps = parseSteps(stepsText, RUN_STEPS);
        if (until !== undefined && since === undefined) throw new UsageError('--until needs --since');
        let fetchMode: FetchMode = { kind: 'incremental' };
        if (since !== undefined) {
          const from = parseTime('--since', since);
          const to = until === undefined ? undefined : parseTime('--until', until);
          if (to !== undefined && Date.parse(to) <= Date.parse(from)) {
            throw new UsageError(`--until (${to}) must be after --since (${from})`);
          }
          fetchMode = {
            kind: 'backfill',
            since: from,
            window: parseWindowSpec(window),
            ...(to ? { until: to } : {}),
          };
        }
        const stop = stopOnSignals((signal) =>
          ctx.logger.warn(`${signal}: finishing the step in flight, then stopping (again to abort at once)`),
        );
        // One progress line per step, so its records/s counts that step only.
        let line: { step: string; progress: ProgressLine } | undefined;
        const onProgress = (step: string, counts: Record<string, number>) => {
          if (!ctx.interactive) return;
          if (line?.step !== step) {
            line?.progress.stop();
            line = { step, progress: startProgress(true, `${step}…`) };
          }
          const text = Object.entries(counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ');
          line.progress.update(`${step}: ${text}`, counts.records ?? counts.consumed ?? counts.rows);
        };
        let summary: RunSummary;
        try {
          summary = await runJob({
            job,
            runId: randomUUID(),
            steps,
            kafka: ctx.kafkaOptions(),
            fetchMode,
            concurrency,
            signal: stop.signal,
            settings: ctx.settings,
            flags: cmd.opts(),
            logger: ctx.logger,
            statePath: ctx.statePath(),
            onStep: (step) => {
              line?.progress.stop();
              line = undefined;
              ctx.logger.debug(`step ${step.name}: ${step.outcome} (exit ${step.exitCode})`);
            },
            onProgress,
          });
        } finally {
          line?.progress.stop();
          stop.dispose();
        }
        if (metricsFile !== undefined) await writeMetricsFile(metricsFile, runRegistry(summary));
        return {
          data: summary,
          text: describeRun(summary),
          exitCode: summary.exitCode === ExitCode.Partial ? ExitCode.Partial : ExitCode.Ok,
          ...(summary.error ? { error: summary.error } : {}),
        };
      }),
    );
}
