import type { IHeaders, KafkaMessage } from 'kafkajs';
import { DLQ_HEADER, type DeadLetterKind } from '../../connectors/dead-letter.js';

/** Set on a message replayed to its source topic: how many times it was replayed. */
export const REPLAY_COUNT_HEADER = 'syncctl-replay-count';

/** A message of the dead-letter topic, read back: where it is, where it came from, why. */
export interface StoredLetter {
  /** Its place on the dead-letter topic. */
  partition: number;
  offset: string;
  kind: DeadLetterKind | 'unknown';
  /** When it was dead-lettered (ISO), from its header, else the Kafka timestamp. */
  deadLetteredAt: string;
  source: {
    topic: string | null;
    partition: number | null;
    offset: string | null;
    key: string | null;
    timestamp: string | null;
  };
  consumerGroup: string | null;
  error: { class: string; code: string; message: string };
  attempts: number;
  /** Unified records: the customer and the record's idempotency key. */
  customerId: string | null;
  recordKey: string | null;
  /** The value is not the original (cut to fit the dead-letter topic): it cannot be replayed as is. */
  truncated: boolean;
  originalValueBytes: number | null;
  /** The original key and headers were left out to fit the topic. */
  headersDropped: boolean;
  /** How often the original was replayed before it came back here. */
  replayCount: number;
  key: Buffer | null;
  value: Buffer | null;
  /** The original message's own headers (everything but the syncctl-dlq-* ones). */
  originalHeaders: Record<string, string>;
  /** Every header of the dead-letter message, as text. */
  headers: Record<string, string>;
}

export function headerMap(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((v) => v.toString()).join(',') : value.toString();
  }
  return out;
}

function intOrNull(text: string | undefined): number | null {
  if (text === undefined || text === '') return null;
  const n = Number(text);
  return Number.isInteger(n) ? n : null;
}

const KINDS: readonly string[] = ['source-message', 'unified-record'];

/** Reads a dead-letter message's headers into a typed letter; missing headers become nulls. */
export function toStoredLetter(partition: number, message: KafkaMessage): StoredLetter {
  const headers = headerMap(message.headers);
  const h = (name: string): string | undefined => {
    const v = headers[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const kind = h(DLQ_HEADER.kind);
  const originalHeaders = Object.fromEntries(
    Object.entries(headers).filter(([name]) => !name.startsWith('syncctl-dlq-')),
  );
  const at = h(DLQ_HEADER.deadLetteredAt);
  return {
    partition,
    offset: message.offset,
    kind: kind !== undefined && KINDS.includes(kind) ? (kind as DeadLetterKind) : 'unknown',
    deadLetteredAt: at ?? new Date(Number(message.timestamp)).toISOString(),
    source: {
      topic: h(DLQ_HEADER.sourceTopic) ?? null,
      partition: intOrNull(h(DLQ_HEADER.sourcePartition)),
      offset: h(DLQ_HEADER.sourceOffset) ?? null,
      key: h(DLQ_HEADER.sourceKey) ?? null,
      timestamp: h(DLQ_HEADER.sourceTimestamp) ?? null,
    },
    consumerGroup: h(DLQ_HEADER.consumerGroup) ?? null,
    error: {
      class: h(DLQ_HEADER.errorClass) ?? 'unknown',
      code: h(DLQ_HEADER.errorCode) ?? '',
      message: h(DLQ_HEADER.errorMessage) ?? '',
    },
    attempts: intOrNull(h(DLQ_HEADER.attempts)) ?? 1,
    customerId: h(DLQ_HEADER.customerId) ?? null,
    recordKey: h(DLQ_HEADER.recordKey) ?? null,
    truncated: h(DLQ_HEADER.valueTruncated) === 'true',
    originalValueBytes: intOrNull(h(DLQ_HEADER.originalValueBytes)),
    headersDropped: h(DLQ_HEADER.originalHeadersDropped) === 'true',
    replayCount: intOrNull(originalHeaders[REPLAY_COUNT_HEADER]) ?? 0,
    key: message.key,
    value: message.value,
    originalHeaders,
    headers,
  };
}

/**
 * The letter as JSON (one --json line, --show): key and value as UTF-8 text. Every header only when
 * asked (--show): the typed fields already say what the syncctl-dlq-* headers say.
 */
export function letterJson(letter: StoredLetter, allHeaders = false): Record<string, unknown> {
  const { key, value, headers, ...rest } = letter;
  return {
    ...rest,
    ...(allHeaders ? { headers } : {}),
    key: key === null ? null : key.toString('utf8'),
    value: value === null ? null : value.toString('utf8'),
  };
}
