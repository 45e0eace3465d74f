import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { messageKeyOf, type Envelope } from '../records/envelope.js';
import {
  BATCH_OVERHEAD_BYTES,
  createProducer,
  DEFAULT_MAX_MESSAGE_BYTES,
  lookupMaxMessageBytes,
  recordBytes,
  toKafkaError,
  type MessageSizeLimit,
} from './kafka.js';
import { UsageError } from '../errors.js';
import { sendEvery } from './kafka-send.js';
import { silentLogger, type Logger } from '../log.js';

/** Under the broker's default 1 MB message.max.bytes per request, with room for headers; lowered to fit a smaller topic limit. */
export const MAX_REQUEST_RECORDS = 2_000;
export const MAX_REQUEST_BYTES = 900_000;

export interface PublishBatchResult {
  records: number;
  bytes: number;
  /** Records acknowledged per partition in this batch. */
  partitions: Record<number, number>;
}

/** Headers that let any client (Java, kcat, Python) route a record without parsing its value. */
export function envelopeHeaders(envelope: Envelope): Record<string, string> {
  return {
    'content-type': 'application/json',
    'syncctl-schema-version': String(envelope.schemaVersion),
    'syncctl-entity': envelope.entity,
    'syncctl-op': envelope.op,
    'syncctl-idempotency-key': envelope.idempotencyKey,
  };
}

/** The Kafka message an envelope becomes. */
export function envelopeMessage(
  envelope: Envelope,
  value: string | Buffer = JSON.stringify(envelope),
): Message {
  return { key: messageKeyOf(envelope), value, headers: envelopeHeaders(envelope) };
}

/** A message with its sizes worked out once, for the size check and for splitting requests. */
export interface PreparedMessage {
  message: Message;
  /** recordBytes() of the message. */
  size: number;
  /** Bytes of the value alone (what the summary counts). */
  valueBytes: number;
}

/**
 * `value` may be the envelope's already-serialised JSON, as a string or as the UTF-8 bytes read from
 * a file (kafkajs then copies the bytes instead of encoding the string again).
 */
export function prepareMessage(envelope: Envelope, value?: string | Buffer): PreparedMessage {
  const message = envelopeMessage(envelope, value);
  const v = message.value as string | Buffer;
  return {
    message,
    size: recordBytes(message),
    valueBytes: typeof v === 'string' ? Buffer.byteLength(v) : v.length,
  };
}

function limitSource(limit: MessageSizeLimit, topic: string): string {
  switch (limit.from) {
    case 'topic':
      return `max.message.bytes of topic ${topic}`;
    case 'broker':
      return `the broker's message.max.bytes`;
    case 'default':
      return `the assumed default (max.message.bytes of ${topic} could not be read)`;
  }
}

/**
 * Why a message cannot go to the topic in one piece, or undefined when it fits. Kafka refuses a
 * batch over the limit as a whole, so an oversized record must be set aside before it is sent.
 */
export function sizeProblem(
  message: Message | PreparedMessage,
  limit: MessageSizeLimit,
  topic: string,
): string | undefined {
  const size = 'size' in message ? message.size : recordBytes(message);
  if (size + BATCH_OVERHEAD_BYTES <= limit.bytes) return undefined;
  return tooLargeReason(size, limit, topic);
}

export function tooLargeReason(size: number, limit: MessageSizeLimit, topic: string): string {
  return `record too large: ${size} bytes, over the ${limit.bytes}-byte limit (${limitSource(limit, topic)})`;
}

/**
 * Publishes envelopes to one topic with the idempotent producer and acks=all. Partitions are assigned
 * here with kafkajs's Java-compatible partitioner so the caller learns exactly where each record went.
 */
export class KafkaPublisher {
  private producer: Producer | undefined;
  private partitionCount = 0;
  private partitionMetadata: { partitionId: number; leader: number }[] = [];
  private readonly partitioner = Partitioners.DefaultPartitioner();
  /** The topic's record-batch size limit, looked up by connect(). */
  limit: MessageSizeLimit = { bytes: DEFAULT_MAX_MESSAGE_BYTES, from: 'default' };

  constructor(
    private readonly kafka: Kafka,
    private readonly brokers: string[],
    readonly topic: string,
    private readonly logger: Logger = silentLogger,
  ) {}

  async connect(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [this.topic] });
      this.partitionCount = metadata.topics[0]?.partitions.length ?? 0;
      if (this.partitionCount > 0) this.limit = await lookupMaxMessageBytes(admin, this.topic, this.logger);
    } catch (err) {
      const name = (err as Error).name;
      const message = (err as Error).message ?? '';
      if (
        name === 'KafkaJSProtocolError' &&
        /does not host this topic-partition|UNKNOWN_TOPIC/i.test(message)
      ) {
        throw new UsageError(`topic "${this.topic}" does not exist`, {
          hint: 'create it with `syncctl topics ensure`',
        });
      }
      throw toKafkaError(err, this.brokers, `looking up topic ${this.topic}`);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    if (this.partitionCount === 0) {
      throw new UsageError(`topic "${this.topic}" does not exist`, {
        hint: 'create it with `syncctl topics ensure`',
      });
    }
    this.partitionMetadata = Array.from({ length: this.partitionCount }, (_, i) => ({
      partitionId: i,
      leader: 0,
    }));
    this.producer = createProducer(this.kafka);
    try {
      await this.producer.connect();
    } catch (err) {
      throw toKafkaError(err, this.brokers, 'connecting the producer');
    }
  }

  partitionFor(key: string): number {
    return this.partitioner({
      topic: this.topic,
      partitionMetadata: this.partitionMetadata as never,
      message: { key, value: null },
    });
  }

  /** Why this envelope cannot be published to the topic (too large), or undefined when it can. */
  sizeProblem(envelope: Envelope, value?: string): string | undefined {
    return sizeProblem(envelopeMessage(envelope, value), this.limit, this.topic);
  }

  /**
   * Resolves only once every record is acknowledged by all in-sync replicas. Records go out in
   * producer requests of at most MAX_REQUEST_RECORDS and MAX_REQUEST_BYTES (less when the topic's
   * limit is smaller: kafkajs sends a request's records for a partition as one batch, and the broker
   * refuses a batch over max.message.bytes), one request at a time so the idempotent producer's
   * per-partition sequence numbers stay in order. `values` may carry each envelope's
   * already-serialised JSON (e.g. the validated input line) to save serialising it again. Callers
   * set aside records that fail sizeProblem() first; one that slips through fails the request.
   */
  async publish(envelopes: Envelope[], values?: string[]): Promise<PublishBatchResult> {
    return this.publishPrepared(envelopes.map((envelope, i) => prepareMessage(envelope, values?.[i])));
  }

  /** publish() for messages already prepared (and size-checked) by the caller. */
  async publishPrepared(prepared: readonly PreparedMessage[]): Promise<PublishBatchResult> {
    if (!this.producer) throw new Error('publisher not connected');
    const maxRequestBytes = Math.min(MAX_REQUEST_BYTES, this.limit.bytes - BATCH_OVERHEAD_BYTES);
    const partitions: Record<number, number> = {};
    let bytes = 0;
    let request: Message[] = [];
    let requestBytes = 0;
    for (const { message, size, valueBytes } of prepared) {
      if (
        request.length >= MAX_REQUEST_RECORDS ||
        (request.length > 0 && requestBytes + size > maxRequestBytes)
      ) {
        await this.send(request);
        request = [];
        requestBytes = 0;
      }
      const partition = this.partitionFor(message.key as string);
      partitions[partition] = (partitions[partition] ?? 0) + 1;
      message.partition = partition;
      request.push(message);
      requestBytes += size;
      bytes += valueBytes;
    }
    if (request.length > 0) await this.send(request);
    return { records: prepared.length, bytes, partitions };
  }

  private async send(messages: Message[]): Promise<void> {
    await sendEvery(this.producer!, [{ topic: this.topic, messages }], {
      brokers: this.brokers,
      action: `publishing to ${this.topic}`,
      logger: this.logger,
    });
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = undefined;
  }
}
