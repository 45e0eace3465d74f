import type { Command } from 'commander';
import { CONSUME_SETTINGS, STATUS_SETTINGS, TOPIC_SETTINGS } from '../../settings/index.js';
import type { StatusReport } from '../../stages/status.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

const HELP = `
Reads only: end offsets through the Kafka admin API (the consumer group is never joined), the
dead-letter topic's headers (by a private group that commits nothing) for the depth by error class,
and the state store: checkpoints, backfill windows done / in progress / remaining, runs and locks. Kafka unreachable: the state store part is still shown, and the exit code is 75.

Examples:
  $ syncctl status
  $ syncctl status --group nightly --runs 20 --json`;

type TableFn = (head: string[], rows: unknown[][]) => string;

function brief(value: unknown, max = 70): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function describeStatus(r: StatusReport, table: TableFn): string {
  const parts: string[] = [];
  if (r.kafka) {
    const k = r.kafka;
    parts.push(
      `Kafka (group ${k.group}): lag ${k.lag}, dead-letter depth ${k.deadLetterDepth}${k.missing.length > 0 ? `, missing topics: ${k.missing.join(', ')}` : ''}`,
      table(
        ['topic', 'partition', 'low', 'end offset', 'committed', 'lag'],
        k.partitions.map((p) => [p.topic, p.partition, p.low, p.high, p.committed ?? '-', p.lag ?? '-']),
      ),
    );
    if (k.deadLetters.length > 0) {
      parts.push(
        table(
          ['dead letters', 'code', 'count', 'kinds', 'last', 'example'],
          k.deadLetters.map((d) => [
            d.errorClass,
            d.errorCode,
            d.count,
            d.kinds.join(','),
            d.lastAt,
            brief(d.example, 60),
          ]),
        ),
      );
    }
  } else {
    parts.push(`Kafka: unavailable (${r.kafkaError?.message ?? 'unknown error'})`);
  }
  const s = r.state;
  parts.push(
    `State store ${s.location}`,
    s.checkpoints.length === 0
      ? 'checkpoints: none'
      : table(
          ['checkpoint', 'updated', 'value'],
          s.checkpoints.map((c) => [c.name, c.updatedAt, brief(c.value)]),
        ),
    ...(s.backfills.length === 0
      ? []
      : [
          table(
            ['backfill', 'since', 'until', 'window', 'status', 'done', 'in progress', 'remaining', 'records'],
            s.backfills.map((b) => [
              b.source,
              b.since,
              b.until,
              b.window,
              b.status,
              `${b.done}/${b.windows}`,
              b.inProgress,
              b.remaining,
              b.records,
            ]),
          ),
        ]),
    s.runs.length === 0
      ? 'runs: none'
      : table(
          ['run', 'job', 'started', 'duration', 'outcome', 'exit', 'error'],
          s.runs.map((run) => [
            run.id,
            run.job,
            run.startedAt,
            run.endedAt
              ? `${((Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1)} s`
              : '-',
            run.outcome,
            run.exitCode ?? '-',
            run.error ?? '',
          ]),
        ),
    s.locks.length === 0
      ? 'locks: none held'
      : table(
          ['lock', 'run', 'pid', 'host', 'since'],
          s.locks.map((l) => [l.name, l.runId, l.pid, l.host, l.since]),
        ),
  );
  return parts.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('status')
    .description(
      'consumer lag, dead letters by error class, checkpoints, backfills, the last runs and lock holders (reads only)',
    );
  addSettingOptions(command, STATUS_SETTINGS);
  addSettingOptions(command, CONSUME_SETTINGS, ['group']);
  addSettingOptions(command, TOPIC_SETTINGS)
    .addHelpText('after', HELP)
    .action(
      action(async (ctx) => {
        const { createKafka } = await import('../../connectors/kafka.js');
        const { status } = await import('../../stages/status.js');
        const { runs } = ctx.resolve(STATUS_SETTINGS);
        const { group } = ctx.resolve(CONSUME_SETTINGS);
        const topics = ctx.resolve(TOPIC_SETTINGS);
        const options = ctx.kafkaOptions();
        const report = await status({
          kafka: createKafka(options),
          brokers: options.brokers,
          statePath: ctx.statePath(),
          group,
          runs,
          topics: {
            customers: topics.customerTopic,
            products: topics.productTopic,
            deadLetter: topics.dlqTopic,
          },
        });
        return {
          data: report,
          text: describeStatus(report, (head, rows) => ctx.table(head, rows)),
          ...(report.kafkaError ? { error: report.kafkaError } : {}),
        };
      }),
    );
}
