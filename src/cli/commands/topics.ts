import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.js';
import { DEFAULT_TOPICS, TOPIC_SETTINGS, TOPICS_ENSURE_SETTINGS } from '../../settings/index.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

interface EnsureFlags {
  config: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function parseConfigs(entries: string[]): Record<string, string> {
  const configs: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--config expects KEY=VALUE, got "${entry}"`);
    configs[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return configs;
}

export default function register(program: Command): void {
  const topics = program
    .command('topics')
    .description('manage the Kafka topics syncctl uses')
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl topics ensure\n  $ syncctl topics describe customer_data',
    );
  const ensure = topics
    .command('ensure')
    .description(
      `create ${DEFAULT_TOPICS.customers}, ${DEFAULT_TOPICS.products} and ${DEFAULT_TOPICS.deadLetter} if missing; report existing ones and conflicts`,
    );
  addSettingOptions(ensure, TOPICS_ENSURE_SETTINGS);
  addSettingOptions(ensure, TOPIC_SETTINGS)
    .option('-c, --config <key=value>', 'topic config, repeatable (e.g. retention.ms=604800000)', collect, [])
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl topics ensure\n  $ syncctl topics ensure --partitions 12 --replication-factor 3 --config retention.ms=604800000',
    )
    .action(
      action<EnsureFlags>(async (ctx, opts) => {
        const { createKafka } = await import('../../connectors/kafka.js');
        const { ensureTopics } = await import('../../stages/topics.js');
        const brokers = ctx.brokers();
        const { partitions, dlqPartitions, replicationFactor } = ctx.resolve(TOPICS_ENSURE_SETTINGS);
        const names = ctx.resolve(TOPIC_SETTINGS);
        const configs = parseConfigs(opts.config);
        const kafka = createKafka(ctx.kafkaOptions());
        const result = await ensureTopics({
          kafka,
          brokers,
          topics: [
            {
              name: names.customerTopic,
              partitions,
              replicationFactor,
              configs,
            },
            {
              name: names.productTopic,
              partitions,
              replicationFactor,
              configs,
            },
            {
              name: names.dlqTopic,
              partitions: dlqPartitions,
              replicationFactor,
              configs,
            },
          ],
        });
        const table = ctx.table(
          ['topic', 'status', 'partitions', 'replication', 'notes'],
          result.topics.map((t) => [
            t.name,
            t.status,
            t.partitions,
            t.replicationFactor,
            t.conflicts.join('; '),
          ]),
        );
        for (const t of result.topics.filter((x) => x.status === 'conflict')) {
          ctx.logger.error(
            `topic ${t.name} exists but ${t.conflicts.join('; ')}; syncctl does not alter existing topics`,
          );
        }
        return {
          data: result,
          text: table,
          exitCode: result.conflicts > 0 ? ExitCode.Failure : ExitCode.Ok,
        };
      }),
    );

  topics
    .command('describe')
    .description('show each partition of the topics with its offsets and message count')
    .argument('[topics...]', 'topics to describe (default: the data and dead-letter topics)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl topics describe\n  $ syncctl topics describe customer_data --json',
    )
    .action(
      action<Record<string, never>>(async (ctx, _opts, command) => {
        const { createKafka } = await import('../../connectors/kafka.js');
        const { describeTopics } = await import('../../stages/topics.js');
        const brokers = ctx.brokers();
        const asked = command.args;
        const configured = ctx.resolve(TOPIC_SETTINGS);
        const names =
          asked.length > 0 ? asked : [configured.customerTopic, configured.productTopic, configured.dlqTopic];
        const topics = await describeTopics({
          kafka: createKafka(ctx.kafkaOptions()),
          brokers,
          topics: names,
        });
        const missing = names.filter((n) => !topics.some((t) => t.name === n));
        for (const name of missing) ctx.logger.warn(`topic ${name} does not exist`);
        const table = ctx.table(
          ['topic', 'partition', 'low', 'high', 'messages'],
          topics.flatMap((t) => [
            ...t.partitions.map((p) => [t.name, p.partition, p.low, p.high, p.messages]),
            [t.name, 'total', '', '', t.messages],
          ]),
        );
        return {
          data: { topics, missing },
          text: table,
          exitCode: missing.length > 0 && asked.length > 0 ? ExitCode.Failure : ExitCode.Ok,
        };
      }),
    );
}
