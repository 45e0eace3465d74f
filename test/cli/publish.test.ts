import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeEnvelope } from '../../src/records/envelope.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { javaPartition, sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { createTopic, readAll, testBrokers, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('syncctl-publish-');
});

describe('syncctl publish (real broker)', () => {
  it('lands 10k records once each, keyed by id, in the Java-compatible partition, in per-key order', async () => {
    const topic = uniqueName('publish10k');
    await createTopic(topic, 6);
    const envelopes = sampleEnvelopes(10_000, 700);
    const file = join(dir, '10k.ndjson');
    writeNdjson(file, envelopes);

    const run = await runSyncctl(['--json', '-b', testBrokers(), 'publish', '--topic', topic, '--in', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ topic, records: 10_000, rejects: 0, rejectsFile: null });
    expect(Object.values(summary.partitions as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(
      10_000,
    );

    const records = await readAll(topic);
    expect(records).toHaveLength(10_000);
    const seen = new Map<number, { key: string | null; partition: number }>();
    const lastSeqOfKey = new Map<string, number>();
    const byPartitionOffset = [...records].sort(
      (a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)),
    );
    for (const record of byPartitionOffset) {
      const envelope = JSON.parse(record.value!);
      expect(seen.has(envelope.data.seq)).toBe(false);
      seen.set(envelope.data.seq, { key: record.key, partition: record.partition });
      expect(record.key).toBe(envelope.id);
      expect(record.partition).toBe(javaPartition(envelope.id, 6));
      expect(record.headers['syncctl-idempotency-key']).toBe(envelope.idempotencyKey);
      const previous = lastSeqOfKey.get(envelope.id) ?? -1;
      expect(envelope.data.seq).toBeGreaterThan(previous);
      lastSeqOfKey.set(envelope.id, envelope.data.seq);
    }
    expect(seen.size).toBe(10_000);
    expect(summary.partitions).toEqual(
      Object.fromEntries(
        [...new Set(records.map((r) => r.partition))].map((p) => [
          String(p),
          records.filter((r) => r.partition === p).length,
        ]),
      ),
    );
  });

  it('publishes every good line and rejects every bad one with its line number (exit 3)', async () => {
    const topic = uniqueName('rejects');
    await createTopic(topic, 3);
    const good = sampleEnvelopes(5, 5);
    const missingId = {
      ...makeEnvelope({ source: 'crm', id: 'x', op: 'upsert', data: {}, sourceUpdatedAt: null }),
    } as Record<string, unknown>;
    delete missingId.id;
    const wrongType = { ...good[0]!, sourceUpdatedAt: 12 };
    const file = join(dir, 'mixed.ndjson');
    writeNdjson(file, [
      good[0]!,
      '{"not": json',
      good[1]!,
      JSON.stringify(missingId),
      good[2]!,
      JSON.stringify(wrongType),
      Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      good[3]!,
      '',
      good[4]!,
    ]);
    const rejects = join(dir, 'mixed.rejects');
    const run = await runSyncctl([
      '-b',
      testBrokers(),
      'publish',
      '-t',
      topic,
      '--in',
      file,
      '--rejects',
      rejects,
    ]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/published 5 record/);
    expect(run.stderr).toMatch(/4 line\(s\) rejected/);
    const rejected = readFileSync(rejects, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rejected.map((r) => r.line)).toEqual([2, 4, 6, 7]);
    expect(rejected[0].reason).toMatch(/bad JSON/);
    expect(rejected[1].reason).toMatch(/missing required field "id"/);
    expect(rejected[2].reason).toMatch(/sourceUpdatedAt/);
    expect(rejected[3].reason).toBe('invalid UTF-8');
    const records = await readAll(topic);
    expect(records.map((r) => JSON.parse(r.value!).data.seq).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('reads stdin, and --dry-run validates without sending', async () => {
    const topic = uniqueName('dryrun');
    await createTopic(topic, 1);
    const input = sampleEnvelopes(20, 3)
      .map((e) => JSON.stringify(e))
      .join('\n');
    const dry = await runSyncctl(['--json', '-b', testBrokers(), 'publish', '-t', topic, '--dry-run'], {
      input,
      cwd: dir,
    });
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, records: 20, rejects: 0 });
    expect(await readAll(topic)).toHaveLength(0);
    const real = await runSyncctl(['--json', '-b', testBrokers(), 'publish', '-t', topic, '-i', '-'], {
      input,
      cwd: dir,
    });
    expect(real.code).toBe(0);
    expect(await readAll(topic)).toHaveLength(20);
  });

  it('takes its flags from SYNCCTL_* variables too', async () => {
    const topic = uniqueName('fromenv');
    await createTopic(topic, 2);
    const file = join(dir, 'env.ndjson');
    writeNdjson(file, sampleEnvelopes(30, 10));
    const run = await runSyncctl(['--json', 'publish'], {
      env: isolatedEnv({
        SYNCCTL_BROKERS: testBrokers(),
        SYNCCTL_TOPIC: topic,
        SYNCCTL_IN: file,
        SYNCCTL_BATCH_SIZE: '7',
      }),
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ topic, records: 30 });
    expect(await readAll(topic)).toHaveLength(30);
  });

  it('rejects envelopes of the wrong entity for a known data topic', async () => {
    const file = join(dir, 'products.ndjson');
    writeNdjson(file, sampleEnvelopes(3, 3, 'inventory'));
    const run = await runSyncctl([
      '-b',
      testBrokers(),
      'publish',
      '-t',
      'customer_data',
      '-i',
      file,
      '--dry-run',
    ]);
    expect(run.code).toBe(3);
    expect(readFileSync(`${file}.rejects.ndjson`, 'utf8')).toMatch(
      /product envelope does not belong on topic customer_data/,
    );
  });

  it('fails clearly, in bounded time and with exit 75, when the broker is unreachable', async () => {
    const file = join(dir, 'down.ndjson');
    writeNdjson(file, sampleEnvelopes(3, 3));
    const run = await runSyncctl(['-b', '127.0.0.1:1', 'publish', '-t', 'customer_data', '-i', file]);
    expect(run.code).toBe(75);
    expect(run.stderr).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1/);
    expect(run.stdout).not.toMatch(/published/);
    expect(run.durationMs).toBeLessThan(30_000);
  });

  it('says which topic is missing instead of auto-creating it', async () => {
    const file = join(dir, 'missing.ndjson');
    writeNdjson(file, sampleEnvelopes(1, 1));
    const topic = uniqueName('missing');
    const run = await runSyncctl(['-b', testBrokers(), 'publish', '-t', topic, '-i', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`topic "${topic}" does not exist`));
    expect(existsSync(`${file}.rejects.ndjson`)).toBe(false);
  });

  it('reports a missing input file as an error', async () => {
    const run = await runSyncctl(
      ['-b', testBrokers(), 'publish', '-t', 'customer_data', '-i', join(dir, 'nope')],
      {
        env: isolatedEnv(),
      },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot read .*nope/);
  });
});
