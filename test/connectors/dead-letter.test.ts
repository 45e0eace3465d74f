import { describe, expect, it } from 'vitest';
import {
  DeadLetterProducer,
  deadLetterHeaders,
  DLQ_HEADER,
  type DeadLetter,
} from '../../src/connectors/dead-letter.js';
import { createTopic, readAll, testBrokers, testKafka, uniqueName } from '../helpers/kafka.js';

const letter = (over: Partial<DeadLetter> = {}): DeadLetter => ({
  kind: 'source-message',
  key: 'C1',
  value: Buffer.from('{"broken'),
  originalHeaders: { 'content-type': Buffer.from('application/json'), [DLQ_HEADER.errorCode]: 'stale' },
  source: { topic: 'customer_data', partition: 2, offset: '41', key: 'C1', timestamp: '1767225600000' },
  error: { class: 'InvalidEnvelopeError', code: 'E_INPUT', message: 'bad JSON near token=abc123secret' },
  attempts: 1,
  ...over,
});

describe('dead-letter headers', () => {
  it('say where the record came from and why, as strings, with secrets redacted', () => {
    const headers = deadLetterHeaders(letter(), 'nightly', new Date('2026-02-03T04:05:06.000Z'));
    expect(headers).toEqual({
      [DLQ_HEADER.kind]: 'source-message',
      [DLQ_HEADER.sourceTopic]: 'customer_data',
      [DLQ_HEADER.sourcePartition]: '2',
      [DLQ_HEADER.sourceOffset]: '41',
      [DLQ_HEADER.sourceKey]: 'C1',
      [DLQ_HEADER.sourceTimestamp]: '1767225600000',
      [DLQ_HEADER.consumerGroup]: 'nightly',
      [DLQ_HEADER.errorClass]: 'InvalidEnvelopeError',
      [DLQ_HEADER.errorCode]: 'E_INPUT',
      [DLQ_HEADER.errorMessage]: 'bad JSON near token=***',
      [DLQ_HEADER.attempts]: '1',
      [DLQ_HEADER.deadLetteredAt]: '2026-02-03T04:05:06.000Z',
    });
  });

  it('cap very long messages', () => {
    const headers = deadLetterHeaders(
      letter({ error: { class: 'X', code: 'E_INPUT', message: 'x'.repeat(10_000) } }),
      'g',
    );
    expect(headers[DLQ_HEADER.errorMessage]?.length).toBeLessThan(2_100);
  });
});

describe('DeadLetterProducer (real broker)', () => {
  it('keeps key, value and original headers byte for byte and adds its own', async () => {
    const topic = uniqueName('dlq');
    await createTopic(topic, 1);
    const producer = new DeadLetterProducer(testKafka(), [testBrokers()], topic, 'group-x');
    await producer.connect();
    try {
      await producer.send([
        letter(),
        letter({
          kind: 'unified-record',
          key: 'C2',
          value: JSON.stringify({ key: 'k', customerId: 'C2', op: 'upsert', record: { name: 'Zoë' } }),
          originalHeaders: {},
          recordKey: 'k',
          customerId: 'C2',
          source: { topic: 'customer_data', partition: null, offset: null, key: 'C2', timestamp: null },
          error: { class: 'SinkPermanentError', code: 'E_SINK_PERMANENT', message: 'refused' },
          attempts: 3,
        }),
      ]);
    } finally {
      await producer.close();
    }
    const records = await readAll(topic);
    expect(records).toHaveLength(2);
    const [first, second] = records;
    expect(first?.key).toBe('C1');
    expect(first?.value).toBe('{"broken');
    expect(first?.headers['content-type']).toBe('application/json');
    // An old dlq header on the original message never masks the new one.
    expect(first?.headers[DLQ_HEADER.errorCode]).toBe('E_INPUT');
    expect(first?.headers[DLQ_HEADER.consumerGroup]).toBe('group-x');
    expect(second?.headers).toMatchObject({
      [DLQ_HEADER.kind]: 'unified-record',
      [DLQ_HEADER.recordKey]: 'k',
      [DLQ_HEADER.customerId]: 'C2',
      [DLQ_HEADER.sourcePartition]: '',
      [DLQ_HEADER.attempts]: '3',
    });
    expect(JSON.parse(second?.value ?? '')).toMatchObject({ record: { name: 'Zoë' } });
  });
});
