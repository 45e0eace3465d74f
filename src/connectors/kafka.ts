import {
  Kafka,
  logLevel as KafkaLogLevel,
  Partitioners,
  type Admin,
  type Consumer,
  type KafkaConfig,
  type LogEntry,
  type Message,
  type Producer,
} from 'kafkajs';
import { BrokerUnreachableError, KafkaError, SyncError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { securityFailure, tlsWatchingSocketFactory, type KafkaSecurity } from './kafka-security.js';

import { GLOBAL_SETTINGS } from '../settings/index.js';

export interface KafkaOptions {
  brokers: string[];
  clientId?: string;
  logger?: Logger;
  /** Upper bound on how long connecting may take before the broker counts as unreachable. */
  connectTimeoutMs?: number;
  /** TLS and SASL options from the --kafka-* settings (see kafka-security.ts); none is PLAINTEXT. */
  security?: KafkaSecurity;
}

export function parseBrokers(value: string | string[]): string[] {
  const list = (Array.isArray(value) ? value : value.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return list;
}

/**
 * kafkajs's default logger writes JSON to stdout, which would corrupt NDJSON output; route it to
 * our stderr logger instead. Its errors are retried or surface as exceptions we report ourselves,
 * so they are debug detail, not operator news.
 */
function logCreator(logger: Logger) {
  return () =>
    ({ log }: LogEntry) => {
      const {
        message,
        timestamp: _timestamp,
        logger: _name,
        ...extra
      } = log as LogEntry['log'] & {
        logger?: string;
      };
      logger.debug(
        `kafkajs ${log.namespace ?? ''}: ${message}${extra.error ? ` (${String(extra.error)})` : ''}`,
        { component: 'kafkajs', ...extra },
      );
    };
}

export const DEFAULT_CONNECT_TIMEOUT_MS = GLOBAL_SETTINGS.connectTimeout.default;

const UNREACHABLE_HINT =
  'check --brokers / SYNCCTL_BROKERS (and --connect-timeout), or start a local one with `syncctl sandbox up`';

/** A listener spoken to in the wrong protocol (TLS to PLAINTEXT or the reverse) looks unreachable: say which one was used. */
function unreachableHint(security: KafkaSecurity | undefined): string {
  return `${UNREACHABLE_HINT}; the listener must speak ${security?.protocol ?? 'PLAINTEXT'} (--kafka-security-protocol)`;
}

interface Connectable {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/** Errors that, while connecting, mean "no usable broker at that address" rather than a refusal. */
const CONNECT_FAILURES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSLockTimeout',
  'KafkaJSBrokerNotFound',
  'KafkaJSConnectionClosedError',
]);

/**
 * Bounds `connect()` of a kafkajs client by the connect timeout. kafkajs's own connectionTimeout
 * covers only the TCP handshake and retries each attempt, so a listener that accepts but never
 * answers (a wrong port, a proxy, a half-dead broker) held a command for ~30 s and then surfaced as
 * "Broker not connected" with no address. Any failure to connect is reported as unreachable.
 */
function boundConnect<T extends Connectable>(client: T, brokers: string[], guard: ConnectGuard): T {
  const { timeoutMs } = guard;
  const connect = client.connect.bind(client);
  const disconnect = client.disconnect.bind(client);
  let abandoned = false;
  // kafkajs's disconnect waits for the connect lock, which a silent broker holds until kafkajs's own
  // (much longer) timeouts expire; after a failed connect there is nothing worth waiting for.
  client.disconnect = () => (abandoned ? Promise.resolve() : disconnect());
  client.connect = async () => {
    abandoned = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new BrokerUnreachableError(
              `cannot reach Kafka at ${brokers.join(',')}: no answer within ${timeoutMs} ms`,
              { hint: unreachableHint(guard.security) },
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([connect(), deadline, guard.tlsFailure]);
    } catch (err) {
      // Stop kafkajs's own retries and sockets in the background.
      abandoned = true;
      void disconnect().catch(() => {});
      if (err instanceof SyncError) throw err;
      const insecure = securityFailure(err, brokers, guard.security);
      if (insecure) throw insecure;
      const root = rootCause(err) as Error | undefined;
      const names = [(err as Error | undefined)?.name, root?.name];
      const message = root?.message ?? String(err);
      if (names.some((n) => n !== undefined && CONNECT_FAILURES.has(n)) || /not connected/i.test(message)) {
        throw new BrokerUnreachableError(`cannot reach Kafka at ${brokers.join(',')}: ${message}`, {
          cause: err,
          hint: unreachableHint(guard.security),
        });
      }
      throw toKafkaError(err, brokers, 'connecting');
    } finally {
      clearTimeout(timer);
    }
  };
  return client;
}

/** What bounds a client's connect: the timeout, and a TLS failure seen on any of its sockets. */
interface ConnectGuard {
  timeoutMs: number;
  /** Rejects with the first TLS failure; never resolves. */
  tlsFailure: Promise<never>;
  security: KafkaSecurity | undefined;
}

/** A Kafka client whose admin, producer and consumer connect within the connect timeout or fail as unreachable. */
class BoundedKafka extends Kafka {
  constructor(
    config: KafkaConfig,
    private readonly brokerList: string[],
    private readonly guard: ConnectGuard,
  ) {
    super(config);
  }

  override admin(...args: Parameters<Kafka['admin']>): Admin {
    return boundConnect(super.admin(...args), this.brokerList, this.guard);
  }

  override producer(...args: Parameters<Kafka['producer']>): Producer {
    return boundConnect(super.producer(...args), this.brokerList, this.guard);
  }

  override consumer(...args: Parameters<Kafka['consumer']>): Consumer {
    return boundConnect(super.consumer(...args), this.brokerList, this.guard);
  }
}

export function createKafka(options: KafkaOptions): Kafka {
  const logger = options.logger ?? silentLogger;
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const { security } = options;
  let failTls: (err: Error) => void = () => {};
  const tlsFailure = new Promise<never>((_, reject) => (failTls = reject));
  // Unobserved until a connect races it; a certificate does not change, so later connects fail too.
  tlsFailure.catch(() => {});
  const config: KafkaConfig = {
    clientId: options.clientId ?? 'syncctl',
    brokers: options.brokers,
    connectionTimeout: connectTimeout,
    authenticationTimeout: connectTimeout,
    requestTimeout: 30_000,
    logLevel: logger.level === 'verbose' ? KafkaLogLevel.INFO : KafkaLogLevel.ERROR,
    logCreator: logCreator(logger),
    // Bounded: an unreachable broker must fail in seconds, not minutes.
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2_000 },
    ...(security?.ssl ? { ssl: security.ssl } : {}),
    ...(security?.sasl ? { sasl: security.sasl } : {}),
    socketFactory: tlsWatchingSocketFactory((err) => failTls(err)),
  };
  return new BoundedKafka(config, options.brokers, { timeoutMs: connectTimeout, tlsFailure, security });
}

export function createProducer(kafka: Kafka, options: { idempotent?: boolean } = {}): Producer {
  const idempotent = options.idempotent ?? true;
  return kafka.producer({
    // Java-compatible murmur2, so Java and librdkafka clients agree on partitions.
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent,
    maxInFlightRequests: idempotent ? 1 : 5,
    allowAutoTopicCreation: false,
  });
}

const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSNonRetriableError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSBrokerNotFound',
  'KafkaJSConnectionClosedError',
]);

function rootCause(err: unknown): unknown {
  let current = err;
  for (let i = 0; i < 10; i++) {
    const next = (current as { originalError?: unknown; cause?: unknown } | undefined)?.originalError;
    if (next === undefined) return current;
    current = next;
  }
  return current;
}

/** Turns a kafkajs error into a SyncError that says what happened in operator terms. */
export function toKafkaError(err: unknown, brokers: string[], action: string): SyncError {
  if (err instanceof SyncError) return err;
  const insecure = securityFailure(err, brokers);
  if (insecure) return insecure;
  const root = rootCause(err) as Error | undefined;
  const name = (err as Error | undefined)?.name ?? '';
  const rootName = root?.name ?? '';
  const message = root?.message ?? String(err);
  if (
    rootName === 'KafkaJSConnectionError' ||
    (CONNECTION_ERRORS.has(name) && /connect|ECONNREFUSED|timeout|closed/i.test(message))
  ) {
    return new BrokerUnreachableError(
      `cannot reach Kafka at ${brokers.join(',')} while ${action}: ${message}`,
      {
        cause: err,
        hint: UNREACHABLE_HINT,
      },
    );
  }
  const retriable = (err as { retriable?: boolean } | undefined)?.retriable ?? false;
  return new KafkaError(`Kafka failed while ${action}: ${message}`, retriable, { cause: err });
}

export async function withAdmin<T>(
  kafka: Kafka,
  brokers: string[],
  fn: (admin: Admin) => Promise<T>,
): Promise<T> {
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    throw toKafkaError(err, brokers, 'connecting');
  }
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Waits until every partition of the topics has a leader. kafkajs's own `createTopics({waitForLeaders})`
 * gives up with "does not host this topic-partition" when a loaded broker is slow to propagate
 * metadata; this polls with a bound instead.
 */
export async function waitForTopicLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      if (metadata.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
        return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline)
      throw new KafkaError(`topics ${topics.join(', ')} have no leader after ${timeoutMs} ms`, true);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the broker allows when neither the topic nor the broker config can be read. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
/** A record batch's own header (v2 format), counted against max.message.bytes with its records. */
export const BATCH_OVERHEAD_BYTES = 61;

export interface MessageSizeLimit {
  bytes: number;
  /** Where the limit came from, for messages: the topic's max.message.bytes, the broker's, or a guess. */
  from: 'topic' | 'broker' | 'default';
}

function readLimit(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The largest record batch the topic accepts: its max.message.bytes (which already reflects the
 * broker's message.max.bytes when the topic has no override), else the broker's, else 1 MiB.
 * A record over it fails the whole producer request, so callers reject it up front instead.
 */
export async function lookupMaxMessageBytes(
  admin: Admin,
  topic: string,
  logger: Logger = silentLogger,
): Promise<MessageSizeLimit> {
  try {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['max.message.bytes'] }],
    });
    const entry = described.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
    const bytes = readLimit(entry?.configValue);
    if (bytes !== undefined) return { bytes, from: 'topic' };
  } catch (err) {
    logger.debug(`cannot read max.message.bytes of ${topic}: ${(err as Error).message}`);
  }
  try {
    const cluster = await admin.describeCluster();
    const nodeId = cluster.brokers[0]?.nodeId;
    if (nodeId !== undefined) {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 4 /* BROKER */, name: String(nodeId), configNames: ['message.max.bytes'] }],
      });
      const entry = described.resources[0]?.configEntries.find((e) => e.configName === 'message.max.bytes');
      const bytes = readLimit(entry?.configValue);
      if (bytes !== undefined) return { bytes, from: 'broker' };
    }
  } catch (err) {
    logger.debug(`cannot read the broker's message.max.bytes: ${(err as Error).message}`);
  }
  logger.debug(`assuming max.message.bytes=${DEFAULT_MAX_MESSAGE_BYTES} for ${topic}`);
  return { bytes: DEFAULT_MAX_MESSAGE_BYTES, from: 'default' };
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * An upper bound on what one message takes in a v2 record batch: key, value, headers, and the
 * varint lengths and deltas around them. Batches are uncompressed, so this is what the broker counts.
 */
export function recordBytes(message: Pick<Message, 'key' | 'value' | 'headers'>): number {
  let size = 40 + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value])
      size += 10 + Buffer.byteLength(name) + byteLength(v);
  }
  return size;
}
