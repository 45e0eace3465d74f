/**
 * Ready-to-run parts of a stage, built from settings: what a command (or `run`, chaining several)
 * needs besides its flags. Each `open…` returns the parts and one `close()` for all of them.
 */
import { analyticsConfigFromSettings, createAnalyticsSink } from '../connectors/analytics-sink.js';
import { CrmSource, crmConfigFromSettings } from '../connectors/crm-source.js';
import { inventoryConfigFromSettings, openInventorySource } from '../connectors/inventory-source.js';
import { createKafka, type KafkaOptions } from '../connectors/kafka.js';
import type { AnalyticsSink } from '../connectors/sink.js';
import type { SourceConnector } from '../connectors/source.js';
import type { Logger } from '../log.js';
import { rejectDirectory } from '../paths.js';
import type { Source } from '../records/envelope.js';
import {
  CONSUME_SETTINGS,
  FETCH_SETTINGS,
  flagOf,
  LIMIT_SETTINGS,
  resolveSettings,
  TOPIC_SETTINGS,
  type SettingsSource,
} from '../settings/index.js';
import { openDb, redactUrl, type Db } from '../state/db.js';
import type { ConsumeOptions } from './consume.js';
import type { OutputSpec } from './fetch/output.js';

/** Where the settings come from: the profile and environment, and a command's flags over them. */
export interface SettingsInput {
  settings: SettingsSource;
  flags?: Readonly<Record<string, unknown>>;
  logger: Logger;
  statePath: string;
}

export type FetchTarget =
  | { kind: 'kafka'; kafka: KafkaOptions; topic?: string }
  | { kind: 'file'; path: string }
  | { kind: 'stdout' };

export interface FetchParts {
  connector: SourceConnector;
  db: Db;
  output: OutputSpec;
  rejectsPath: string;
  /** --max-record-bytes and --max-pages, for fetch(). */
  limits: { maxRecordBytes: number; maxPages?: number };
  /** The caller's logger with the source (and topic) on every line. */
  logger: Logger;
  close(): Promise<void>;
}

/** The source's topic: --topic, else the configured customer or product topic. */
function topicOf(source: Source, input: SettingsInput, topic: string | undefined): string {
  if (topic !== undefined) return topic;
  const topics = resolveSettings(TOPIC_SETTINGS, input.settings, input.flags);
  return source === 'crm' ? topics.customerTopic : topics.productTopic;
}

function defaultRejects(source: Source, target: FetchTarget): string {
  return target.kind === 'file' ? `${target.path}.rejects.ndjson` : `syncctl-fetch-${source}-rejects.ndjson`;
}

/** A source's connector from its settings (an Inventory's WSDL loaded now, so a broken one fails here). */
export async function openSource(
  input: Omit<SettingsInput, 'statePath'> & { source: Source; keepReadings?: boolean },
): Promise<SourceConnector> {
  const flags = input.flags ?? {};
  const options = { logger: input.logger, keepReadings: input.keepReadings ?? false };
  return input.source === 'crm'
    ? new CrmSource(crmConfigFromSettings(input.settings, flags), options)
    : await openInventorySource(inventoryConfigFromSettings(input.settings, flags), options);
}

/**
 * The source connector (the WSDL loaded now, so a broken one fails before any output is opened),
 * the output and the state store of a fetch.
 */
export async function openFetch(
  input: SettingsInput & { source: Source; target: FetchTarget; rejects?: string },
): Promise<FetchParts> {
  const { source, target } = input;
  const topic = target.kind === 'kafka' ? topicOf(source, input, target.topic) : undefined;
  const logger = input.logger.child({ source, ...(topic !== undefined ? { topic } : {}) });
  const rejectsPath = input.rejects ?? defaultRejects(source, target);
  // Before any request: the reject file is opened only at the first reject, after work is done.
  if (target.kind === 'file') rejectDirectory(target.path, flagOf(FETCH_SETTINGS, 'out'));
  rejectDirectory(rejectsPath, flagOf(FETCH_SETTINGS, 'rejects'));
  const output: OutputSpec =
    target.kind === 'kafka'
      ? {
          kind: 'kafka',
          kafka: createKafka({ ...target.kafka, logger }),
          brokers: target.kafka.brokers,
          topic: topic as string,
        }
      : target;
  const connector = await openSource({ ...input, logger, source });
  let db: Db;
  try {
    db = await openDb(input.statePath);
  } catch (err) {
    await connector.close().catch(() => {});
    throw err;
  }
  const { maxRecordBytes, maxPages } = resolveSettings(LIMIT_SETTINGS, input.settings, input.flags);
  return {
    connector,
    db,
    output,
    rejectsPath,
    limits: { maxRecordBytes, ...(maxPages === undefined ? {} : { maxPages }) },
    logger,
    close: async () => {
      await db.close().catch(() => {});
      await connector.close().catch(() => {});
    },
  };
}

export interface ConsumeParts {
  sink: AnalyticsSink;
  db: Db;
  /** Everything consume() needs except a stop signal. */
  options: Omit<ConsumeOptions, 'signal'>;
  /** The caller's logger with the group and topics on every line. */
  logger: Logger;
  close(): Promise<void>;
}

/** The Analytics sink, the state store, the Kafka client and the settings of a consume run. */
export async function openConsume(input: SettingsInput & { kafka: KafkaOptions }): Promise<ConsumeParts> {
  const { brokers } = input.kafka;
  const values = resolveSettings(CONSUME_SETTINGS, input.settings, input.flags);
  const { maxRecordBytes } = resolveSettings(LIMIT_SETTINGS, input.settings, input.flags);
  const topics = resolveSettings(TOPIC_SETTINGS, input.settings, input.flags);
  const logger = input.logger.child({
    group: values.group,
    topics: [topics.customerTopic, topics.productTopic],
  });
  const sink = createAnalyticsSink(analyticsConfigFromSettings(input.settings, input.flags), logger);
  let db: Db;
  try {
    db = await openDb(input.statePath);
  } catch (err) {
    await sink.close().catch(() => {});
    throw err;
  }
  logger.debug(`state store: ${redactUrl(db.location)}`);
  return {
    sink,
    db,
    options: {
      kafka: createKafka({ ...input.kafka, logger }),
      brokers,
      db,
      sink,
      group: values.group,
      customerTopic: topics.customerTopic,
      productTopic: topics.productTopic,
      deadLetterTopic: topics.dlqTopic,
      once: values.once,
      batchSize: values.batchSize,
      productRefPath: values.productRefPath,
      maxRecordBytes,
      idleTimeoutMs: values.idleTimeout * 1000,
      shutdownTimeoutMs: values.shutdownTimeout * 1000,
      sessionTimeoutMs: values.sessionTimeout * 1000,
      maxDeliveryDelayMs: values.maxDeliveryDelay * 1000,
      logger,
    },
    logger,
    close: async () => {
      await db.close().catch(() => {});
      await sink.close().catch(() => {});
    },
  };
}
