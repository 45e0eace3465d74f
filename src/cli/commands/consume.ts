import type { Command } from 'commander';
import ora, { type Ora } from 'ora';
import {
  addAnalyticsOptions,
  analyticsConfigFromSettings,
  createAnalyticsSink,
  type AnalyticsFlags,
} from '../../connectors/analytics-sink.js';
import { createKafka } from '../../connectors/kafka.js';
import { DEFAULT_PRODUCT_REF_PATH } from '../../merge/product-refs.js';
import { redact } from '../../redact.js';
import { pick } from '../../settings.js';
import { consume, CONSUME_DEFAULTS, type ConsumeSummary } from '../../stages/consume.js';
import { DEFAULT_TOPICS } from '../../stages/topics.js';
import { defaultStatePath, openDb, redactUrl } from '../../state/db.js';
import { stopOnSignals } from '../signals.js';
import { action, parseIntFlag, type GlobalFlags } from '../context.js';

interface ConsumeFlags extends AnalyticsFlags {
  once?: boolean;
  group?: string;
  customerTopic?: string;
  productTopic?: string;
  dlqTopic?: string;
  batchSize?: number;
  productRefPath?: string;
  idleTimeout?: number;
  shutdownTimeout?: number;
  sessionTimeout?: number;
  maxDeliveryDelay?: number;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function describeSummary(s: ConsumeSummary): string {
  const lines = [
    `${s.status === 'failed' ? 'stopped on an error after consuming' : 'consumed'} ${s.consumed} message(s) from ${s.topics.customers}, ${s.topics.products} (group ${s.group}) in ${seconds(s.durationMs)}`,
    `merged ${s.merged}, unchanged ${s.unchanged}, stale ${s.stale} (older versions ignored), tombstones ${s.tombstones}`,
    `delivered ${s.delivered} unified record(s) in ${s.sinkBatches} batch(es), skipped ${s.skippedDuplicate} as duplicate, retries ${s.retries}`,
    `dead-lettered ${s.deadLettered} (${s.deadLetteredMessages} invalid message(s), ${s.deadLetteredRecords} refused by Analytics)${s.deadLettered > 0 ? ` → ${s.topics.deadLetter}` : ''}`,
    `lag left ${s.lagLeft === null ? 'unknown' : s.lagLeft.total}, pending deliveries ${s.pendingDeliveries ?? 'unknown'}${s.finishedBy === 'idle-timeout' ? ' (gave up: no progress before the end offsets)' : ''}`,
  ];
  return lines.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('consume')
    .description(
      'consume customer_data and inventory_data, merge, dedupe and deliver unified records to Analytics',
    )
    .option('--once', 'drain to the end offsets seen at start, commit, print the summary and exit (for cron)')
    .option('-g, --group <id>', `consumer group (default ${CONSUME_DEFAULTS.group})`)
    .option('--customer-topic <topic>', `customer topic (default ${DEFAULT_TOPICS.customers})`)
    .option('--product-topic <topic>', `product topic (default ${DEFAULT_TOPICS.products})`)
    .option('--dlq-topic <topic>', `dead-letter topic (default ${DEFAULT_TOPICS.deadLetter})`)
    .option(
      '--batch-size <n>',
      `unified records per Analytics delivery (default ${CONSUME_DEFAULTS.batchSize})`,
      parseIntFlag('--batch-size', 1),
    )
    .option(
      '--product-ref-path <path>',
      `where customer records list product ids, e.g. orders[].productId (default ${DEFAULT_PRODUCT_REF_PATH})`,
    )
    .option(
      '--idle-timeout <seconds>',
      `--once: give up (exit 75) after this long without progress before the end offsets (default ${CONSUME_DEFAULTS.idleTimeoutMs / 1000})`,
      parseIntFlag('--idle-timeout', 1),
    )
    .option(
      '--shutdown-timeout <seconds>',
      `on SIGINT/SIGTERM, wait this long for the batch in flight and the delivery of what was read (default ${CONSUME_DEFAULTS.shutdownTimeoutMs / 1000})`,
      parseIntFlag('--shutdown-timeout', 1),
    )
    .option(
      '--session-timeout <seconds>',
      `Kafka session timeout: how soon the group gives a dead instance's partitions to others (default ${CONSUME_DEFAULTS.sessionTimeoutMs / 1000})`,
      parseIntFlag('--session-timeout', 6),
    )
    .option(
      '--max-delivery-delay <seconds>',
      `deliver merged changes at most this long after reading them, so a customer whose products arrive a few batches later is sent once; 0 delivers after every Kafka batch (default ${CONSUME_DEFAULTS.maxDeliveryDelayMs / 1000})`,
      parseIntFlag('--max-delivery-delay', 0),
    );
  addAnalyticsOptions(command)
    .addHelpText(
      'after',
      `
State (merge tables, delivery outbox and ledger) lives in the state store: --state / SYNCCTL_STATE,
a SQLite file by default or a postgres:// URL so several instances can share one group.
Unified records: docs/unified-record.md, schemas/unified-record.schema.json.
Delivery is deferred by up to --max-delivery-delay (sooner once 20 × --batch-size customers wait,
at the end of --once, on a stop); offsets are committed only after that delivery. --once reads
the product topic before the customer topic.

Exit codes: 0 all delivered; 3 finished, some records dead-lettered; 75 Analytics or Kafka
unavailable (rerun later: nothing is lost or stored twice); 1 other failures; 2 usage/config.

Examples:
  $ syncctl consume --once
  $ syncctl consume --once --json --group nightly
  $ SYNCCTL_STATE=postgres://sync@db/sync syncctl consume      # run until SIGTERM`,
    )
    .action(
      action<ConsumeFlags>(async (ctx, opts, cmd) => {
        const globals = cmd.optsWithGlobals<GlobalFlags>();
        const { settings } = ctx;
        const brokers = ctx.brokers();
        const once = pick(settings, 'once', opts.once, false);
        const analytics = analyticsConfigFromSettings(settings, opts);
        const statePath = pick(settings, 'state', globals.state, defaultStatePath());
        const idleTimeout = pick(
          settings,
          'idleTimeout',
          opts.idleTimeout,
          CONSUME_DEFAULTS.idleTimeoutMs / 1000,
        );
        const shutdownTimeout = pick(
          settings,
          'shutdownTimeout',
          opts.shutdownTimeout,
          CONSUME_DEFAULTS.shutdownTimeoutMs / 1000,
        );
        const sessionTimeout = pick(
          settings,
          'sessionTimeout',
          opts.sessionTimeout,
          CONSUME_DEFAULTS.sessionTimeoutMs / 1000,
        );
        const maxDeliveryDelay = pick(
          settings,
          'maxDeliveryDelay',
          opts.maxDeliveryDelay,
          CONSUME_DEFAULTS.maxDeliveryDelayMs / 1000,
        );
        const productRefPath = pick(settings, 'productRefPath', opts.productRefPath);

        const stop = stopOnSignals((signal) =>
          ctx.logger.warn(
            `${signal}: finishing the batch in flight and delivering what was read, then stopping (again to quit at once)`,
          ),
        );
        let spinner: Ora | undefined;
        if (ctx.interactive) spinner = ora({ text: 'consuming…', stream: process.stderr }).start();
        const sink = createAnalyticsSink(analytics, ctx.logger);
        let summary: ConsumeSummary;
        try {
          const db = await openDb(statePath);
          ctx.logger.debug(`state store: ${redactUrl(db.location)}`);
          try {
            summary = await consume({
              kafka: createKafka({ brokers, logger: ctx.logger, connectTimeoutMs: ctx.connectTimeoutMs }),
              brokers,
              db,
              sink,
              group: pick(settings, 'group', opts.group, CONSUME_DEFAULTS.group),
              customerTopic: pick(settings, 'customerTopic', opts.customerTopic, DEFAULT_TOPICS.customers),
              productTopic: pick(settings, 'productTopic', opts.productTopic, DEFAULT_TOPICS.products),
              deadLetterTopic: pick(settings, 'dlqTopic', opts.dlqTopic, DEFAULT_TOPICS.deadLetter),
              once,
              batchSize: pick(settings, 'batchSize', opts.batchSize, CONSUME_DEFAULTS.batchSize),
              ...(productRefPath !== undefined ? { productRefPath } : {}),
              idleTimeoutMs: idleTimeout * 1000,
              shutdownTimeoutMs: shutdownTimeout * 1000,
              sessionTimeoutMs: sessionTimeout * 1000,
              maxDeliveryDelayMs: maxDeliveryDelay * 1000,
              signal: stop.signal,
              logger: ctx.logger,
            });
          } finally {
            await db.close().catch(() => {});
          }
        } finally {
          spinner?.stop();
          stop.dispose();
          await sink.close().catch(() => {});
        }
        if (summary.error) {
          ctx.logger.error(redact(summary.error.message));
          if (summary.error.hint) process.stderr.write(`syncctl: hint: ${summary.error.hint}\n`);
        } else if (summary.deadLettered > 0) {
          ctx.logger.warn(`${summary.deadLettered} record(s) dead-lettered to ${summary.topics.deadLetter}`);
        }
        return { data: summary, text: describeSummary(summary), exitCode: summary.exitCode };
      }),
    );
}
