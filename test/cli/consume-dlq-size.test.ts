import { afterEach, describe, expect, it } from 'vitest';
import { DLQ_HEADER } from '../../src/connectors/dead-letter.js';
import { ExitCode } from '../../src/errors.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { firstRound, publishAll, SourceWorld } from '../helpers/consume-data.js';
import { createHarness, expectViewMatches, type Harness } from '../helpers/consume-harness.js';
import { readAll, testKafka } from '../helpers/kafka.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function setMaxMessageBytes(topic: string, bytes: number): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2 /* TOPIC */,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

describe('syncctl consume: a poison message too large for the dead-letter topic', () => {
  it('is dead-lettered truncated with its provenance, committed past, and the run exits 3', async () => {
    const h = await createHarness('sqlite');
    harnesses.push(h);
    await setMaxMessageBytes(h.customerTopic, 4 * 1024 * 1024);
    await setMaxMessageBytes(h.dlqTopic, 1_048_576);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 10, 5);
    const poison = `{"not an envelope": "${'p'.repeat(2 * 1024 * 1024)}"}`;
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      {
        topic: h.customerTopic,
        envelopes: customerEnvelopes,
        raw: [{ key: 'poison', value: poison, headers: { 'x-origin': 'test' } }],
      },
    ]);
    const env = isolatedEnv(h.cliEnv());
    const run = await runSyncctl([...h.cliArgs(), '--once', '--json'], { env, timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(ExitCode.Partial);
    expect(JSON.parse(run.stdout)).toMatchObject({
      status: 'completed',
      deadLetteredMessages: 1,
      lagLeft: { total: 0 },
    });
    expect(run.stderr).toMatch(/dead-lettered with its value truncated/);

    const letters = await readAll(h.dlqTopic);
    expect(letters).toHaveLength(1);
    const letter = letters[0]!;
    expect(letter.key).toBe('poison');
    expect(letter.headers).toMatchObject({
      [DLQ_HEADER.kind]: 'source-message',
      [DLQ_HEADER.sourceTopic]: h.customerTopic,
      [DLQ_HEADER.sourceKey]: 'poison',
      [DLQ_HEADER.valueTruncated]: 'true',
      [DLQ_HEADER.originalValueBytes]: String(Buffer.byteLength(poison)),
      'x-origin': 'test',
    });
    expect(letter.headers[DLQ_HEADER.sourcePartition]).toMatch(/^[0-2]$/);
    expect(letter.headers[DLQ_HEADER.sourceOffset]).toMatch(/^\d+$/);
    expect(letter.value!.length).toBeLessThan(1_048_576);
    expect(poison.startsWith(letter.value!)).toBe(true);

    // The partition is not blocked: the next run has nothing left to do.
    const again = await runSyncctl([...h.cliArgs(), '--once', '--json'], { env, timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(again.stdout)).toMatchObject({ consumed: 0, lagLeft: { total: 0 } });
    await expectViewMatches(h.server, world.expectedView());
  });
});
