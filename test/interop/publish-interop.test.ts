import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSyncctl } from '../helpers/cli.js';
import { javaPartition, sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { javaConsoleConsume, kcat } from '../helpers/external.js';
import { createTopic, testBrokers, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

describe('topics written by syncctl are readable by other clients', () => {
  it('kcat and the Java console consumer read keys, partitions, headers and values', async () => {
    const topic = uniqueName('interop');
    await createTopic(topic, 4);
    const envelopes = sampleEnvelopes(200, 50);
    const file = join(tempDir('syncctl-interop-'), 'in.ndjson');
    writeNdjson(file, envelopes);
    const published = await runSyncctl(['-b', testBrokers(), 'publish', '-t', topic, '-i', file]);
    expect(published.code).toBe(0);

    const out = await kcat(['-C', '-b', testBrokers(), '-t', topic, '-e', '-q', '-f', '%k\t%p\t%h\t%s\n']);
    const rows = out.trim().split('\n');
    expect(rows).toHaveLength(200);
    const seqs = new Set<number>();
    for (const row of rows) {
      const [key, partition, headers, value] = row.split('\t');
      const envelope = JSON.parse(value!);
      seqs.add(envelope.data.seq);
      expect(key).toBe(envelope.id);
      // librdkafka's default partitioner differs; the partition must be Java's murmur2 choice.
      expect(Number(partition)).toBe(javaPartition(key!, 4));
      expect(headers).toContain(`syncctl-idempotency-key=${envelope.idempotencyKey}`);
      expect(headers).toContain('syncctl-entity=customer');
    }
    expect(seqs.size).toBe(200);

    const java = await javaConsoleConsume(testBrokers(), topic, 200);
    const javaRows = java.trim().split('\n');
    expect(javaRows).toHaveLength(200);
    const first = javaRows.find((r) => r.includes('"seq":0,'))!;
    expect(first).toMatch(/^Partition:\d+\|.*syncctl-op:upsert.*\|C0\|\{/);
  });
});
