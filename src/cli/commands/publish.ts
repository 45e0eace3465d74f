import type { Command } from 'commander';
import { createKafka } from '../../connectors/kafka.js';
import { ExitCode, UsageError } from '../../errors.js';
import { publish } from '../../stages/publish.js';
import { MAX_REQUEST_RECORDS } from '../../connectors/kafka-publisher.js';
import { pick } from '../../settings.js';
import { action, parseIntFlag } from '../context.js';

interface PublishFlags {
  topic?: string;
  in?: string;
  rejects?: string;
  dryRun?: boolean;
  batchSize?: number;
}

export default function register(program: Command): void {
  program
    .command('publish')
    .description('publish NDJSON envelopes to a Kafka topic, keyed by entity id')
    .option('-t, --topic <topic>', 'topic to publish to (customer_data, inventory_data, …); required')
    .option('-i, --in <file>', 'NDJSON input file, or - for stdin (default -)')
    .option(
      '--rejects <file>',
      'where malformed lines go (default: <in>.rejects.ndjson, or ./syncctl-rejects.ndjson for stdin)',
    )
    .option('--dry-run', 'validate every line without sending anything')
    .option(
      '--batch-size <n>',
      'records per producer request (default 2000)',
      parseIntFlag('--batch-size', 1),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl publish --topic customer_data --in customers.ndjson\n  $ syncctl fetch --source crm | syncctl publish --topic customer_data\n  $ syncctl publish --topic inventory_data --in products.ndjson --dry-run --json',
    )
    .action(
      action<PublishFlags>(async (ctx, opts) => {
        const settings = ctx.settings;
        const topic = pick(settings, 'topic', opts.topic, '');
        if (topic === '') throw new UsageError('--topic is required (or SYNCCTL_TOPIC)');
        const input = pick(settings, 'in', opts.in, '-');
        const fromStdin = input === '-';
        const rejectsPath = pick(
          settings,
          'rejects',
          opts.rejects,
          fromStdin ? 'syncctl-rejects.ndjson' : `${input}.rejects.ndjson`,
        );
        const batchSize = pick(settings, 'batchSize', opts.batchSize, MAX_REQUEST_RECORDS);
        const brokers = ctx.brokers();
        const summary = await publish({
          kafka: createKafka({ brokers, logger: ctx.logger, connectTimeoutMs: ctx.connectTimeoutMs }),
          brokers,
          topic,
          input: fromStdin ? process.stdin : input,
          rejectsPath,
          dryRun: pick(settings, 'dryRun', opts.dryRun, false),
          batchSize,
          logger: ctx.logger,
        });
        if (summary.rejects > 0) {
          ctx.logger.warn(`${summary.rejects} line(s) rejected; see ${summary.rejectsFile}`);
        }
        const partitions = Object.entries(summary.partitions)
          .sort(([a], [b]) => Number(a) - Number(b))
          .map(([p, n]) => `p${p}=${n}`)
          .join(' ');
        const text = [
          `${summary.dryRun ? 'validated (dry run)' : 'published'} ${summary.records} record(s), ${summary.bytes} bytes to ${summary.topic} in ${(summary.durationMs / 1000).toFixed(2)} s`,
          ...(partitions ? [`partitions: ${partitions}`] : []),
          `rejected: ${summary.rejects}${summary.rejectsFile ? ` (${summary.rejectsFile})` : ''}`,
        ].join('\n');
        return { data: summary, text, exitCode: summary.rejects > 0 ? ExitCode.Partial : ExitCode.Ok };
      }),
    );
}
