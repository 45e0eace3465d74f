import type { KafkaMessage } from 'kafkajs';
import type { DeadLetter } from '../../connectors/dead-letter.js';
import { parseEnvelopeLine, type Entity } from '../../records/envelope.js';
import type { MergeItem } from '../../state/merge-store.js';
import { recordSizeProblem } from '../../records/size-limit.js';

/** What one Kafka message from a data topic is: something to merge, or something to dead-letter. */
export type Decoded = { kind: 'merge'; item: MergeItem } | { kind: 'dead-letter'; letter: DeadLetter };

/** The error class and code on dead letters for messages that are not valid envelopes. */
export const INVALID_MESSAGE = { class: 'InvalidEnvelopeError', code: 'E_INPUT' } as const;

/** The error class and code on dead letters for messages over --max-record-bytes. */
export const OVERSIZED_MESSAGE = { class: 'LimitExceededError', code: 'E_LIMIT' } as const;

export function decodeMessage(
  topic: string,
  partition: number,
  message: KafkaMessage,
  entity: Entity,
  maxRecordBytes?: number,
): Decoded {
  const key = message.key === null ? null : message.key.toString('utf8');
  const position = { topic, partition, offset: message.offset };
  const reject = (reason: string, error: { class: string; code: string } = INVALID_MESSAGE): Decoded => ({
    kind: 'dead-letter',
    letter: {
      kind: 'source-message',
      key: message.key,
      value: message.value,
      originalHeaders: message.headers ?? {},
      source: { topic, partition, offset: message.offset, key, timestamp: message.timestamp ?? null },
      error: {
        class: error.class,
        code: error.code,
        message: `${topic}[${partition}]@${message.offset}: ${reason}`,
      },
      attempts: 1,
    },
  });

  if (message.value === null) {
    // A tombstone: the key names the entity that is gone.
    if (key === null || key === '') return reject('tombstone (null value) without a key');
    return { kind: 'merge', item: { entity, id: key, envelope: null, position } };
  }
  // Checked before parsing: an oversized value is never turned into objects.
  const tooLarge = recordSizeProblem(message.value.length, maxRecordBytes);
  if (tooLarge !== undefined) return reject(tooLarge, OVERSIZED_MESSAGE);
  const parsed = parseEnvelopeLine(message.value);
  if (!parsed.ok) return reject(parsed.reason);
  const envelope = parsed.envelope;
  if (envelope.entity !== entity) {
    return reject(`a ${envelope.entity} envelope does not belong on ${topic} (expected ${entity} records)`);
  }
  // A key that differs from the id would let versions of one entity land in different partitions,
  // out of order; versions still protect the merge, so the record is taken, keyed by its id.
  return { kind: 'merge', item: { entity, id: envelope.id, envelope, position } };
}
