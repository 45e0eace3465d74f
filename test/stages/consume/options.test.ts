import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { AnalyticsSink } from '../../../src/connectors/sink.js';
import { UsageError } from '../../../src/errors.js';
import type { Db } from '../../../src/state/db.js';
import { resolveSettings } from '../../../src/stages/consume/options.js';
import { CONSUME_DEFAULTS, type ConsumeOptions } from '../../../src/stages/consume/types.js';

// resolveSettings never touches the clients: only the plain options matter here.
const base = { kafka: {} as Kafka, brokers: ['b:9092'], db: {} as Db, sink: {} as AnalyticsSink };
const resolve = (over: Partial<ConsumeOptions> = {}) => resolveSettings({ ...base, ...over });

describe('resolveSettings', () => {
  it('applies the defaults, the backlog in Analytics batches of the batch size', () => {
    const s = resolve({ batchSize: 10 });
    expect(s).toMatchObject({
      group: CONSUME_DEFAULTS.group,
      once: false,
      batchSize: 10,
      deliveryBacklog: 10 * CONSUME_DEFAULTS.backlogBatches,
      sessionTimeoutMs: CONSUME_DEFAULTS.sessionTimeoutMs,
      startupRetryMs: CONSUME_DEFAULTS.startupRetryMs,
    });
    expect(s.dataTopics).toEqual([s.topics.customers, s.topics.products]);
  });

  const bad: [string, Partial<ConsumeOptions>, RegExp][] = [
    ['one topic for customers and products', { customerTopic: 'x', productTopic: 'x' }, /must differ/],
    [
      'the dead-letter topic on a data topic',
      { deadLetterTopic: 'x', customerTopic: 'x' },
      /dead-letter topic/,
    ],
    ['a batch size of 0', { batchSize: 0 }, /--batch-size must be ≥ 1, got 0/],
    ['a session timeout under 6 s', { sessionTimeoutMs: 5_999 }, /--session-timeout/],
    [
      'a negative delivery delay',
      { maxDeliveryDelayMs: -1_000 },
      /--max-delivery-delay must be ≥ 0 seconds, got -1/,
    ],
    ['a backlog of 0', { deliveryBacklog: 0 }, /delivery backlog/],
  ];
  for (const [what, over, message] of bad) {
    it(`refuses ${what} as a usage error`, () => {
      expect(() => resolve(over)).toThrow(UsageError);
      expect(() => resolve(over)).toThrow(message);
    });
  }
});
