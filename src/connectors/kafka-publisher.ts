import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { messageKeyOf, type Envelope } from '../records/envelope.js';
import { createProducer, toKafkaError } from './kafka.js';
import { UsageError } from '../errors.js';

/** Under the broker's default 1 MB message.max.bytes per request, with room for headers. */
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

/**
 * Publishes envelopes to one topic with the idempotent producer and acks=all. Partitions are assigned
 * here with kafkajs's Java-compatible partitioner so the caller learns exactly where each record went.
 */
export class KafkaPublisher {
  private producer: Producer | undefined;
  private partitionCount = 0;
  private readonly partitioner = Partitioners.DefaultPartitioner();

  constructor(
    private readonly kafka: Kafka,
    private readonly brokers: string[],
    readonly topic: string,
  ) {}

  async connect(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [this.topic] });
      this.partitionCount = metadata.topics[0]?.partitions.length ?? 0;
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
    this.producer = createProducer(this.kafka);
    try {
      await this.producer.connect();
    } catch (err) {
      throw toKafkaError(err, this.brokers, 'connecting the producer');
    }
  }

  partitionFor(key: string): number {
    const partitionMetadata = Array.from({ length: this.partitionCount }, (_, i) => ({
      partitionId: i,
      leader: 0,
    }));
    return this.partitioner({
      topic: this.topic,
      partitionMetadata: partitionMetadata as never,
      message: { key, value: null },
    });
  }

  /**
   * Resolves only once every record is acknowledged by all in-sync replicas. Records go out in
   * producer requests of at most MAX_REQUEST_RECORDS / MAX_REQUEST_BYTES, one request at a time so
   * the idempotent producer's per-partition sequence numbers stay in order. `values` may carry each
   * envelope's already-serialised JSON (e.g. the validated input line) to save serialising it again.
   */
  async publish(envelopes: Envelope[], values?: string[]): Promise<PublishBatchResult> {
    if (!this.producer) throw new Error('publisher not connected');
    const partitions: Record<number, number> = {};
    let bytes = 0;
    let request: Message[] = [];
    let requestBytes = 0;
    for (let i = 0; i < envelopes.length; i++) {
      const envelope = envelopes[i] as Envelope;
      const key = messageKeyOf(envelope);
      const value = values?.[i] ?? JSON.stringify(envelope);
      const size = Buffer.byteLength(value);
      if (
        request.length >= MAX_REQUEST_RECORDS ||
        (request.length > 0 && requestBytes + size > MAX_REQUEST_BYTES)
      ) {
        await this.send(request);
        request = [];
        requestBytes = 0;
      }
      const partition = this.partitionFor(key);
      partitions[partition] = (partitions[partition] ?? 0) + 1;
      request.push({ key, value, partition, headers: envelopeHeaders(envelope) });
      requestBytes += size;
      bytes += size;
    }
    if (request.length > 0) await this.send(request);
    return { records: envelopes.length, bytes, partitions };
  }

  private async send(messages: Message[]): Promise<void> {
    try {
      await this.producer!.send({ topic: this.topic, messages, acks: -1, timeout: 30_000 });
    } catch (err) {
      throw toKafkaError(err, this.brokers, `publishing to ${this.topic}`);
    }
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = undefined;
  }
}
