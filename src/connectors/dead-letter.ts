import type { IHeaders, Kafka, Message, Producer } from 'kafkajs';
import { redact } from '../redact.js';
import { createProducer, toKafkaError } from './kafka.js';

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

/** Publishes dead letters with the idempotent producer and acks=all; `send` resolves only once they are durable. */
export class DeadLetterProducer {
  private producer: Producer | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly brokers: string[],
    readonly topic: string,
    private readonly group: string,
  ) {}

  async connect(): Promise<void> {
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
      return { key: letter.key, value: letter.value, headers };
    });
    try {
      await this.producer.send({ topic: this.topic, messages, acks: -1, timeout: 30_000 });
    } catch (err) {
      throw toKafkaError(err, this.brokers, `dead-lettering to ${this.topic}`);
    }
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = undefined;
  }
}
