import type { IHeaders, Kafka, Message, Producer } from 'kafkajs';
import { redact } from '../redact.js';
import {
  BATCH_OVERHEAD_BYTES,
  createProducer,
  DEFAULT_MAX_MESSAGE_BYTES,
  lookupMaxMessageBytes,
  recordBytes,
  toKafkaError,
  type MessageSizeLimit,
} from './kafka.js';
import { silentLogger, type Logger } from '../log.js';
import { assignPartitions, sendEvery } from './kafka-send.js';

/**
 * The dead-letter topic. Every record that cannot be delivered goes here with headers saying where
 * it came from and why, as plain UTF-8 strings so any client (kcat, the Java console consumer,
 * Python) can read them without syncctl. Values and keys are kept byte for byte.
 */

export const DLQ_HEADER = {
  kind: 'syncctl-dlq-kind',
  sourceTopic: 'syncctl-dlq-source-topic',
  sourcePartition: 'syncctl-dlq-source-partition',
  sourceOffset: 'syncctl-dlq-source-offset',
  sourceKey: 'syncctl-dlq-source-key',
  sourceTimestamp: 'syncctl-dlq-source-timestamp',
  consumerGroup: 'syncctl-dlq-consumer-group',
  errorClass: 'syncctl-dlq-error-class',
  errorCode: 'syncctl-dlq-error-code',
  errorMessage: 'syncctl-dlq-error-message',
  attempts: 'syncctl-dlq-attempts',
  deadLetteredAt: 'syncctl-dlq-dead-lettered-at',
  recordKey: 'syncctl-dlq-record-key',
  customerId: 'syncctl-dlq-customer-id',
  /** "true" when the value is not the original: cut short (or empty) to fit the dead-letter topic. */
  valueTruncated: 'syncctl-dlq-value-truncated',
  /** The original value's size in bytes, set whenever the value was truncated. */
  originalValueBytes: 'syncctl-dlq-original-value-bytes',
  /** "true" when the original message's own headers and key were left out to fit the topic. */
  originalHeadersDropped: 'syncctl-dlq-original-headers-dropped',
} as const;

/**
 * `source-message`: a Kafka message from a data topic that could not be parsed or validated; the
 * value is that message's value. `unified-record`: a unified record Analytics refused for good; the
 * value is the sink record (key, customerId, op, record) so it can be replayed as is.
 */
export type DeadLetterKind = 'source-message' | 'unified-record';

export interface DeadLetter {
  kind: DeadLetterKind;
  key: Buffer | string | null;
  value: Buffer | string | null;
  /** The original message's headers, kept; the dlq headers are added next to them. */
  originalHeaders?: IHeaders;
  source: {
    topic: string;
    partition: number | null;
    offset: string | null;
    key: string | null;
    /** The original message's timestamp (epoch ms, as Kafka gives it). */
    timestamp: string | null;
  };
  error: { class: string; code: string; message: string };
  attempts: number;
  /** For unified records: the record's idempotency key and customer. */
  recordKey?: string;
  customerId?: string;
}

const MAX_MESSAGE = 2_000;

function headerText(value: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => v.toString()).join(',');
  return value.toString();
}

/** The headers a dead-lettered record carries; exported for tests and replay tools. */
export function deadLetterHeaders(
  letter: DeadLetter,
  group: string,
  now = new Date(),
): Record<string, string> {
  const message = redact(letter.error.message);
  const headers: Record<string, string> = {
    [DLQ_HEADER.kind]: letter.kind,
    [DLQ_HEADER.sourceTopic]: letter.source.topic,
    [DLQ_HEADER.sourcePartition]: letter.source.partition === null ? '' : String(letter.source.partition),
    [DLQ_HEADER.sourceOffset]: letter.source.offset ?? '',
    [DLQ_HEADER.sourceKey]: letter.source.key ?? '',
    [DLQ_HEADER.sourceTimestamp]: letter.source.timestamp ?? '',
    [DLQ_HEADER.consumerGroup]: group,
    [DLQ_HEADER.errorClass]: letter.error.class,
    [DLQ_HEADER.errorCode]: letter.error.code,
    [DLQ_HEADER.errorMessage]: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message,
    [DLQ_HEADER.attempts]: String(letter.attempts),
    [DLQ_HEADER.deadLetteredAt]: now.toISOString(),
  };
  if (letter.recordKey !== undefined) headers[DLQ_HEADER.recordKey] = letter.recordKey;
  if (letter.customerId !== undefined) headers[DLQ_HEADER.customerId] = letter.customerId;
  return headers;
}

function valueBytes(value: Buffer | string | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** The first `max` bytes of a value (a string is cut at a character boundary). */
function truncateValue(value: Buffer | string, max: number): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  if (typeof value !== 'string') return Buffer.from(bytes.subarray(0, max));
  let end = max;
  // Back off continuation bytes so a cut never splits a UTF-8 character.
  while (end > 0 && end < bytes.length && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return Buffer.from(bytes.subarray(0, end));
}

/**
 * Makes a dead-letter message fit the dead-letter topic. A record that cannot be dead-lettered would
 * block its partition forever (the consumer may not commit past what it did not keep), so when the
 * original does not fit whole, the letter keeps its provenance headers and as much of the value as
 * fits, and says so in headers; as a last resort the original key and headers go too.
 */
export function fitDeadLetter(message: Message, limit: MessageSizeLimit): Message {
  const budget = limit.bytes - BATCH_OVERHEAD_BYTES;
  if (recordBytes(message) <= budget) return message;
  const value = message.value ?? null;
  const original = valueBytes(value);
  const marked: Message = {
    ...message,
    value: null,
    headers: {
      ...message.headers,
      [DLQ_HEADER.valueTruncated]: 'true',
      [DLQ_HEADER.originalValueBytes]: String(original),
    },
  };
  const room = budget - recordBytes(marked);
  if (room >= 0) {
    if (room > 0 && value !== null) marked.value = truncateValue(value, room);
    return marked;
  }
  const dlqHeaders = Object.fromEntries(
    Object.entries(marked.headers ?? {}).filter(([name]) => name.startsWith('syncctl-dlq-')),
  );
  const sourceKey = dlqHeaders[DLQ_HEADER.sourceKey];
  if (typeof sourceKey === 'string' && sourceKey.length > 1_024)
    dlqHeaders[DLQ_HEADER.sourceKey] = `${sourceKey.slice(0, 1_024)}…`;
  return {
    key: null,
    value: null,
    headers: { ...dlqHeaders, [DLQ_HEADER.originalHeadersDropped]: 'true' },
  };
}

/** Publishes dead letters with the idempotent producer and acks=all; `send` resolves only once they are durable. */
export class DeadLetterProducer {
  private producer: Producer | undefined;
  /** The dead-letter topic's record-batch limit, looked up by connect(). */
  limit: MessageSizeLimit = { bytes: DEFAULT_MAX_MESSAGE_BYTES, from: 'default' };
  /** The dead-letter topic's partition count: messages are placed before sending so none can go missing. */
  private partitions = 1;

  constructor(
    private readonly kafka: Kafka,
    private readonly brokers: string[],
    readonly topic: string,
    private readonly group: string,
    private readonly logger: Logger = silentLogger,
  ) {}

  async connect(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      this.partitions = await admin
        .fetchTopicMetadata({ topics: [this.topic] })
        .then((m) => Math.max(1, m.topics[0]?.partitions.length ?? 0))
        // Not worth failing for: a missing topic fails the first send with its own message, and any
        // partition of an existing one is a correct place for a letter.
        .catch(() => 1);
      this.limit = await lookupMaxMessageBytes(admin, this.topic, this.logger);
    } catch (err) {
      throw toKafkaError(err, this.brokers, `looking up the dead-letter topic ${this.topic}`);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    this.producer = createProducer(this.kafka);
    try {
      await this.producer.connect();
    } catch (err) {
      this.producer = undefined;
      throw toKafkaError(err, this.brokers, 'connecting the dead-letter producer');
    }
  }

  async send(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    if (!this.producer) throw new Error('dead-letter producer not connected');
    const now = new Date();
    const messages: Message[] = letters.map((letter) => {
      const headers: IHeaders = {};
      for (const [name, value] of Object.entries(letter.originalHeaders ?? {})) {
        const text = headerText(value);
        if (text !== undefined && !name.startsWith('syncctl-dlq-')) headers[name] = text;
      }
      Object.assign(headers, deadLetterHeaders(letter, this.group, now));
      const fitted = fitDeadLetter({ key: letter.key, value: letter.value, headers }, this.limit);
      if (fitted.headers?.[DLQ_HEADER.valueTruncated] === 'true') {
        this.logger.warn(
          `a ${valueBytes(letter.value)}-byte message from ${letter.source.topic}[${letter.source.partition ?? '?'}] at offset ${letter.source.offset ?? '?'} is over the ${this.limit.bytes}-byte limit of ${this.topic}: dead-lettered with its value truncated (header ${DLQ_HEADER.valueTruncated})`,
        );
      }
      return fitted;
    });
    // One request per group of letters under the topic's limit: the broker refuses an oversized batch whole.
    const budget = this.limit.bytes - BATCH_OVERHEAD_BYTES;
    let request: Message[] = [];
    let requestBytes = 0;
    for (const message of messages) {
      const size = recordBytes(message);
      if (request.length > 0 && requestBytes + size > budget) {
        await this.sendRequest(request);
        request = [];
        requestBytes = 0;
      }
      request.push(message);
      requestBytes += size;
    }
    if (request.length > 0) await this.sendRequest(request);
  }

  private async sendRequest(messages: Message[]): Promise<void> {
    await sendEvery(
      this.producer!,
      [{ topic: this.topic, messages: assignPartitions(messages, this.partitions) }],
      {
        brokers: this.brokers,
        action: `dead-lettering to ${this.topic}`,
        logger: this.logger,
      },
    );
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = undefined;
  }
}
