import type { Command } from 'commander';
import Table from 'cli-table3';
import { createKafka } from '../../connectors/kafka.js';
import { ExitCode, UsageError } from '../../errors.js';
import { pick } from '../../settings.js';
import { DEFAULT_TOPICS, describeTopics, ensureTopics } from '../../stages/topics.js';
import { action, parseIntFlag } from '../context.js';

interface EnsureFlags {
  partitions?: number;
  replicationFactor?: number;
  config: string[];
  dlqPartitions?: number;
  customerTopic?: string;
  productTopic?: string;
  dlqTopic?: string;
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
  topics
    .command('ensure')
    .description(
      `create ${DEFAULT_TOPICS.customers}, ${DEFAULT_TOPICS.products} and ${DEFAULT_TOPICS.deadLetter} if missing; report existing ones and conflicts`,
    )
    .option(
      '-p, --partitions <n>',
      'partitions for the data topics (default 6)',
      parseIntFlag('--partitions', 1),
    )
    .option(
      '--dlq-partitions <n>',
      'partitions for the dead-letter topic (default 1)',
      parseIntFlag('--dlq-partitions', 1),
    )
    .option(
      '-r, --replication-factor <n>',
      'replication factor (default 1)',
      parseIntFlag('--replication-factor', 1),
    )
    .option('--customer-topic <name>', `customer topic (default ${DEFAULT_TOPICS.customers})`)
    .option('--product-topic <name>', `product topic (default ${DEFAULT_TOPICS.products})`)
    .option('--dlq-topic <name>', `dead-letter topic (default ${DEFAULT_TOPICS.deadLetter})`)
    .option('-c, --config <key=value>', 'topic config, repeatable (e.g. retention.ms=604800000)', collect, [])
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl topics ensure\n  $ syncctl topics ensure --partitions 12 --replication-factor 3 --config retention.ms=604800000',
    )
    .action(
      action<EnsureFlags>(async (ctx, opts) => {
        const brokers = ctx.brokers();
        const partitions = pick(ctx.settings, 'partitions', opts.partitions, 6);
        const dlqPartitions = pick(ctx.settings, 'dlqPartitions', opts.dlqPartitions, 1);
        const replicationFactor = pick(ctx.settings, 'replicationFactor', opts.replicationFactor, 1);
        const configs = parseConfigs(opts.config);
        const kafka = createKafka({ brokers, logger: ctx.logger, connectTimeoutMs: ctx.connectTimeoutMs });
        const result = await ensureTopics({
          kafka,
          brokers,
          topics: [
            {
              name: pick(ctx.settings, 'customerTopic', opts.customerTopic, DEFAULT_TOPICS.customers),
              partitions,
              replicationFactor,
              configs,
            },
            {
              name: pick(ctx.settings, 'productTopic', opts.productTopic, DEFAULT_TOPICS.products),
              partitions,
              replicationFactor,
              configs,
            },
            {
              name: pick(ctx.settings, 'dlqTopic', opts.dlqTopic, DEFAULT_TOPICS.deadLetter),
              partitions: dlqPartitions,
              replicationFactor,
              configs,
            },
          ],
        });
        const table = new Table({
          head: ['topic', 'status', 'partitions', 'replication', 'notes'],
          style: { head: [], border: [] },
        });
        for (const t of result.topics) {
          table.push([t.name, t.status, t.partitions, t.replicationFactor, t.conflicts.join('; ')]);
        }
        for (const t of result.topics.filter((x) => x.status === 'conflict')) {
          ctx.logger.error(
            `topic ${t.name} exists but ${t.conflicts.join('; ')}; syncctl does not alter existing topics`,
          );
        }
        return {
          data: result,
          text: table.toString(),
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
        const brokers = ctx.brokers();
        const asked = command.args;
        const names =
          asked.length > 0
            ? asked
            : [
                pick(ctx.settings, 'customerTopic', undefined, DEFAULT_TOPICS.customers),
                pick(ctx.settings, 'productTopic', undefined, DEFAULT_TOPICS.products),
                pick(ctx.settings, 'dlqTopic', undefined, DEFAULT_TOPICS.deadLetter),
              ];
        const topics = await describeTopics({
          kafka: createKafka({ brokers, logger: ctx.logger, connectTimeoutMs: ctx.connectTimeoutMs }),
          brokers,
          topics: names,
        });
        const missing = names.filter((n) => !topics.some((t) => t.name === n));
        for (const name of missing) ctx.logger.warn(`topic ${name} does not exist`);
        const table = new Table({
          head: ['topic', 'partition', 'low', 'high', 'messages'],
          style: { head: [], border: [] },
        });
        for (const t of topics) {
          for (const p of t.partitions) table.push([t.name, p.partition, p.low, p.high, p.messages]);
          table.push([t.name, 'total', '', '', t.messages]);
        }
        return {
          data: { topics, missing },
          text: table.toString(),
          exitCode: missing.length > 0 && asked.length > 0 ? ExitCode.Failure : ExitCode.Ok,
        };
      }),
    );
}
