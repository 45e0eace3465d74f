import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { decodeMessage, INVALID_MESSAGE } from '../../../src/stages/consume/decode.js';
import { sampleEnvelopes } from '../../helpers/envelopes.js';

function message(key: string | null, value: Buffer | string | null, offset = '7'): KafkaMessage {
  return {
    key: key === null ? null : Buffer.from(key),
    value: typeof value === 'string' ? Buffer.from(value) : value,
    timestamp: '1767225600000',
    attributes: 0,
    offset,
    headers: { origin: Buffer.from('test') },
  } as KafkaMessage;
}

describe('decodeMessage', () => {
  const [customer] = sampleEnvelopes(1, 1, 'crm');
  const [product] = sampleEnvelopes(1, 1, 'inventory');

  it('takes a valid envelope of the topic entity, with its Kafka position', () => {
    const decoded = decodeMessage(
      'customers',
      2,
      message(customer!.id, JSON.stringify(customer)),
      'customer',
    );
    expect(decoded).toEqual({
      kind: 'merge',
      item: {
        entity: 'customer',
        id: customer!.id,
        envelope: customer,
        position: { topic: 'customers', partition: 2, offset: '7' },
      },
    });
  });

  it('keys a record by its envelope id even when the message key differs', () => {
    const decoded = decodeMessage(
      'customers',
      0,
      message('another-key', JSON.stringify(customer)),
      'customer',
    );
    expect(decoded.kind === 'merge' && decoded.item.id).toBe(customer!.id);
  });

  it('turns a keyed tombstone into a delete of that id', () => {
    const decoded = decodeMessage('products', 1, message('P9', null), 'product');
    expect(decoded).toEqual({
      kind: 'merge',
      item: {
        entity: 'product',
        id: 'P9',
        envelope: null,
        position: { topic: 'products', partition: 1, offset: '7' },
      },
    });
  });

  const rejects: [string, KafkaMessage, string, RegExp][] = [
    ['a tombstone without a key', message(null, null), 'customer', /tombstone \(null value\) without a key/],
    ['a tombstone with an empty key', message('', null), 'customer', /without a key/],
    ['bad JSON', message('C1', '{not json'), 'customer', /bad JSON/],
    ['invalid UTF-8', message('C1', Buffer.from([0xc3, 0x28])), 'customer', /invalid UTF-8/],
    [
      'an envelope of the other entity',
      message('P0', JSON.stringify(product)),
      'customer',
      /a product envelope does not belong on t/,
    ],
    ['JSON that is not an envelope', message('C1', '{"id":"C1"}'), 'customer', /./],
  ];
  for (const [what, msg, entity, reason] of rejects) {
    it(`dead-letters ${what}, keeping the original bytes, headers and position`, () => {
      const decoded = decodeMessage('t', 3, msg, entity as 'customer');
      expect(decoded.kind).toBe('dead-letter');
      if (decoded.kind !== 'dead-letter') return;
      const { letter } = decoded;
      expect(letter.kind).toBe('source-message');
      expect(letter.key).toEqual(msg.key);
      expect(letter.value).toEqual(msg.value);
      expect(letter.originalHeaders).toEqual(msg.headers);
      expect(letter.error.class).toBe(INVALID_MESSAGE.class);
      expect(letter.error.code).toBe(INVALID_MESSAGE.code);
      expect(letter.error.message).toMatch(/^t\[3\]@7: /);
      expect(letter.error.message).toMatch(reason);
      expect(letter.source).toEqual({
        topic: 't',
        partition: 3,
        offset: '7',
        key: msg.key === null ? null : msg.key.toString(),
        timestamp: '1767225600000',
      });
      expect(letter.attempts).toBe(1);
    });
  }
});
