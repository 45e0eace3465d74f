import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { deadLetterHeaders, type DeadLetter } from '../../../src/connectors/dead-letter.js';
import { UsageError } from '../../../src/errors.js';
import { inRanges, matches, parseOffsetRanges } from '../../../src/stages/replay-dlq/filter.js';
import { toStoredLetter } from '../../../src/stages/replay-dlq/letter.js';

const letter: DeadLetter = {
  kind: 'source-message',
  key: 'C7',
  value: '{"bad": true}',
  source: { topic: 'customer_data', partition: 2, offset: '40', key: 'C7', timestamp: '1767225600000' },
  error: { class: 'InvalidEnvelopeError', code: 'E_INPUT', message: 'customer_data[2]@40: missing field id' },
  attempts: 3,
};

function stored(offset = '12') {
  const headers = {
    ...deadLetterHeaders(letter, 'nightly', new Date('2026-12-01T10:00:00Z')),
    'x-origin': 'crm',
    'syncctl-replay-count': '2',
  };
  const message = {
    key: Buffer.from('C7'),
    value: Buffer.from('{"bad": true}'),
    headers,
    offset,
    timestamp: '0',
    attributes: 0,
  };
  return toStoredLetter(1, message as unknown as KafkaMessage);
}

describe('replay-dlq letters and filters', () => {
  it('reads a dead letter back from its headers', () => {
    expect(stored()).toMatchObject({
      partition: 1,
      offset: '12',
      kind: 'source-message',
      deadLetteredAt: '2026-12-01T10:00:00.000Z',
      source: { topic: 'customer_data', partition: 2, offset: '40', key: 'C7' },
      consumerGroup: 'nightly',
      error: { class: 'InvalidEnvelopeError', code: 'E_INPUT' },
      attempts: 3,
      truncated: false,
      replayCount: 2,
      originalHeaders: { 'x-origin': 'crm', 'syncctl-replay-count': '2' },
    });
  });

  it('parses offset ranges', () => {
    expect(parseOffsetRanges('0:10-20,5,30-,-3')).toEqual([
      { partition: 0, from: 10n, to: 20n },
      { partition: null, from: 5n, to: 5n },
      { partition: null, from: 30n, to: null },
      { partition: null, from: null, to: 3n },
    ]);
    for (const bad of ['', 'x', '1:', '20-10', '0:-', 'a-b'])
      expect(() => parseOffsetRanges(bad)).toThrow(UsageError);
    const ranges = parseOffsetRanges('1:10-20');
    expect(inRanges(ranges, 1, '15')).toBe(true);
    expect(inRanges(ranges, 0, '15')).toBe(false);
    expect(inRanges(ranges, 1, '21')).toBe(false);
    expect(inRanges(undefined, 0, '1')).toBe(true);
  });

  it('matches every filter', () => {
    const l = stored();
    expect(matches({}, l)).toBe(true);
    expect(matches({ errorClass: 'InvalidEnvelopeError', error: 'MISSING FIELD', key: 'C7' }, l)).toBe(true);
    expect(matches({ errorClass: 'SinkPermanentError' }, l)).toBe(false);
    expect(matches({ error: 'E_INPUT' }, l)).toBe(true);
    expect(matches({ sourceTopic: 'inventory_data' }, l)).toBe(false);
    expect(matches({ sinceMs: Date.parse('2026-12-01T10:00:00Z') }, l)).toBe(true);
    expect(matches({ untilMs: Date.parse('2026-12-01T10:00:00Z') }, l)).toBe(false);
    expect(matches({ minAttempts: 3 }, l)).toBe(true);
    expect(matches({ minAttempts: 4 }, l)).toBe(false);
    expect(matches({ offsets: parseOffsetRanges('1:12') }, l)).toBe(true);
    expect(matches({ offsets: parseOffsetRanges('0:12') }, l)).toBe(false);
  });
});
