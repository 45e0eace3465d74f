import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitForTopicLeaders } from '../../src/connectors/kafka.js';
import { makeEnvelope, type Envelope } from '../../src/records/envelope.js';
import { runSyncctl } from '../helpers/cli.js';
import { sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { readAll, testBrokers, testKafka, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('syncctl-publish-sizes-');
});

async function createTopicWith(name: string, partitions: number, configs: Record<string, string>) {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: false,
      topics: [
        {
          topic: name,
          numPartitions: partitions,
          configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
        },
      ],
    });
    await waitForTopicLeaders(admin, [name], 60_000);
  } finally {
    await admin.disconnect();
  }
}

function bigEnvelope(id: string, bytes: number): Envelope {
  return makeEnvelope({
    source: 'crm',
    id,
    op: 'upsert',
    data: { seq: -1, blob: 'x'.repeat(bytes) },
    sourceUpdatedAt: '2026-01-01T00:00:00.000Z',
  });
}

function readRejects(path: string): { line: number; reason: string; raw: string }[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('syncctl publish: records over the topic size limit (real broker)', () => {
  it('rejects a 20 MB line with its line number and publishes the rest (exit 3, --json summary)', async () => {
    const topic = uniqueName('oversize');
    await createTopicWith(topic, 3, {});
    const good = sampleEnvelopes(20, 20);
    const file = join(dir, 'huge.ndjson');
    writeNdjson(file, [...good.slice(0, 10), bigEnvelope('HUGE', 20 * 1024 * 1024), ...good.slice(10)]);
    const rejectsPath = join(dir, 'huge.rejects');
    const run = await runSyncctl([
      '--json',
      '-b',
      testBrokers(),
      'publish',
      '-t',
      topic,
      '-i',
      file,
      '--rejects',
      rejectsPath,
    ]);
    expect(run.code).toBe(3);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ topic, lines: 21, records: 20, rejects: 1, rejectsFile: rejectsPath });
    const rejected = readRejects(rejectsPath);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.line).toBe(11);
    // Names the size and the limit (the test broker's default, inherited by the topic).
    expect(rejected[0]!.reason).toMatch(
      /record too large: \d{8} bytes, over the \d+-byte limit \(max.message.bytes of topic /,
    );
    expect(rejected[0]!.raw.length).toBeLessThan(100 * 1024);
    const records = await readAll(topic);
    expect(records.map((r) => JSON.parse(r.value!).data.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it("honours the topic's own max.message.bytes for single records and for producer requests", async () => {
    const topic = uniqueName('smalllimit');
    await createTopicWith(topic, 1, { 'max.message.bytes': '100000' });
    // 300 records of ~5 KB: far over 100 KB per request unless requests are split to the topic's limit.
    const medium = Array.from({ length: 300 }, (_, seq) =>
      makeEnvelope({
        source: 'crm',
        id: `M${seq}`,
        op: 'upsert',
        data: { seq, blob: 'm'.repeat(5_000) },
        sourceUpdatedAt: '2026-01-01T00:00:00.000Z',
      }),
    );
    const file = join(dir, 'medium.ndjson');
    // Line 151 fits the 1 MB default but not this topic.
    writeNdjson(file, [...medium.slice(0, 150), bigEnvelope('BIG', 150_000), ...medium.slice(150)]);
    const rejectsPath = join(dir, 'medium.rejects');
    const run = await runSyncctl([
      '--json',
      '-b',
      testBrokers(),
      'publish',
      '-t',
      topic,
      '-i',
      file,
      '--rejects',
      rejectsPath,
    ]);
    expect(run.stderr).not.toMatch(/error/);
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toMatchObject({ records: 300, rejects: 1 });
    const rejected = readRejects(rejectsPath);
    expect(rejected.map((r) => r.line)).toEqual([151]);
    expect(rejected[0]!.reason).toMatch(
      new RegExp(
        `record too large: 15\\d{4} bytes, over the 100000-byte limit \\(max.message.bytes of topic ${topic}\\)`,
      ),
    );
    expect(await readAll(topic)).toHaveLength(300);
  });
});
