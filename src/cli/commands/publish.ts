import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.js';
import { envName, flagOf, LIMIT_SETTINGS, PUBLISH_SETTINGS } from '../../settings/index.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

export default function register(program: Command): void {
  const command = program
    .command('publish')
    .description('publish NDJSON envelopes to a Kafka topic, keyed by entity id');
  addSettingOptions(command, PUBLISH_SETTINGS);
  addSettingOptions(command, LIMIT_SETTINGS, ['maxRecordBytes'])
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl publish --topic customer_data --in customers.ndjson\n  $ syncctl fetch --source crm | syncctl publish --topic customer_data\n  $ syncctl publish --topic inventory_data --in products.ndjson --dry-run --json',
    )
    .action(
      action(async (ctx) => {
        const { createKafka } = await import('../../connectors/kafka.js');
        const { publish } = await import('../../stages/publish.js');
        const { rejectDirectory } = await import('../../paths.js');
        const { topic, in: input, rejects, dryRun, batchSize } = ctx.resolve(PUBLISH_SETTINGS);
        const { maxRecordBytes } = ctx.resolve(LIMIT_SETTINGS);
        if (topic === undefined) {
          throw new UsageError(`${flagOf(PUBLISH_SETTINGS, 'topic')} is required (or ${envName('topic')})`);
        }
        const fromStdin = input === '-';
        const rejectsPath = rejects ?? (fromStdin ? 'syncctl-rejects.ndjson' : `${input}.rejects.ndjson`);
        if (!fromStdin) rejectDirectory(input, flagOf(PUBLISH_SETTINGS, 'in'));
        rejectDirectory(rejectsPath, flagOf(PUBLISH_SETTINGS, 'rejects'));
        const brokers = ctx.brokers();
        const summary = await publish({
          kafka: createKafka(ctx.kafkaOptions()),
          brokers,
          topic,
          input: fromStdin ? process.stdin : input,
          rejectsPath,
          dryRun,
          batchSize,
          maxRecordBytes,
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
