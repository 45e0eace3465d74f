import { writeFileSync } from 'node:fs';
import { makeEnvelope, type Envelope, type Source } from '../../src/records/envelope.js';

/** `count` envelopes over `keys` distinct ids, each carrying a global sequence number. */
export function sampleEnvelopes(count: number, keys: number, source: Source = 'crm'): Envelope[] {
  const prefix = source === 'crm' ? 'C' : 'P';
  return Array.from({ length: count }, (_, seq) =>
    makeEnvelope({
      source,
      id: `${prefix}${seq % keys}`,
      op: 'upsert',
      data: { seq, name: `name ${seq} ✓` },
      sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
    }),
  );
}

export function writeNdjson(path: string, lines: (Envelope | string | Buffer)[]): void {
  const parts = lines.map((l) =>
    Buffer.isBuffer(l)
      ? Buffer.concat([l, Buffer.from('\n')])
      : Buffer.from(`${typeof l === 'string' ? l : JSON.stringify(l)}\n`),
  );
  writeFileSync(path, Buffer.concat(parts));
}

/** Kafka's Java murmur2 partitioner, written out independently of kafkajs to check interop. */
export function javaPartition(key: string, partitions: number): number {
  const data = Buffer.from(key, 'utf8');
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = seed ^ length;
  const length4 = Math.floor(length / 4);
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data[i4]! & 0xff) +
      ((data[i4 + 1]! & 0xff) << 8) +
      ((data[i4 + 2]! & 0xff) << 16) +
      ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length % 4;
  const idx = length & ~3;
  if (rest === 3) h ^= (data[idx + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[idx + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[idx]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}
