import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnvelope } from '../../src/records/envelope.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createHarness, storedRecords, type Harness } from '../helpers/consume-harness.js';
import { javaConsoleConsume, kcat } from '../helpers/external.js';
import { testBrokers } from '../helpers/kafka.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness('sqlite');
});
afterAll(async () => {
  await harness?.close();
});

/** kcat -P with key and value separated by a tab, one message a line, keyed like syncctl would. */
async function kcatProduce(topic: string, lines: [string, string][]): Promise<void> {
  await kcat(
    ['-P', '-b', testBrokers(), '-t', topic, '-K', '\t', '-X', 'partitioner=murmur2_random'],
    lines.map(([k, v]) => `${k}\t${v}`).join('\n') + '\n',
  );
}

describe('topics are language-neutral: other clients produce and read them', () => {
  it('consumes records produced by kcat, and kcat and Java read the dead-letter topic with its headers', async () => {
    const product = makeEnvelope({
      source: 'inventory',
      id: 'P-kcat-1',
      op: 'upsert',
      data: { id: 'P-kcat-1', name: 'Ünïcode lamp', price: 12.5 },
      sourceUpdatedAt: '2026-03-01T00:00:00.000Z',
    });
    const customers = ['C-kcat-1', 'C-kcat-2'].map((id, i) =>
      makeEnvelope({
        source: 'crm',
        id,
        op: 'upsert',
        data: { id, name: `kcat customer ${i} — 山田`, productIds: ['P-kcat-1'] },
        sourceUpdatedAt: '2026-03-02T00:00:00.000Z',
      }),
    );
    await kcatProduce(harness.productTopic, [[product.id, JSON.stringify(product)]]);
    await kcatProduce(harness.customerTopic, [
      ...customers.map((c) => [c.id, JSON.stringify(c)] as [string, string]),
      ['C-kcat-bad', '{"this is": "not an envelope"'],
    ]);

    const run = await runSyncctl(['--json', ...harness.cliArgs(), '--once'], {
      env: isolatedEnv(harness.cliEnv()),
    });
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(3);
    const summary = JSON.parse(run.stdout);
    expect(summary.deadLettered).toBe(1);

    const stored = await storedRecords(harness.server);
    expect(stored.map((r) => r.customerId)).toEqual(['C-kcat-1', 'C-kcat-2']);
    for (const r of stored) {
      const record = r.record as { products: { productId: string; product: { name: string } }[] };
      expect(record.products.map((p) => [p.productId, p.product.name])).toEqual([
        ['P-kcat-1', 'Ünïcode lamp'],
      ]);
    }

    // kcat (librdkafka) reads the dead-letter record: original key and value, readable headers.
    const dlq = await kcat([
      '-C',
      '-b',
      testBrokers(),
      '-t',
      harness.dlqTopic,
      '-e',
      '-q',
      '-f',
      '%k\t%h\t%s\n',
    ]);
    const [key, headers, value] = dlq.trim().split('\t');
    expect(key).toBe('C-kcat-bad');
    expect(value).toBe('{"this is": "not an envelope"');
    expect(headers).toContain(`syncctl-dlq-source-topic=${harness.customerTopic}`);
    expect(headers).toContain(`syncctl-dlq-consumer-group=${harness.group}`);
    expect(headers).toMatch(/syncctl-dlq-source-offset=\d+/);
    expect(headers).toMatch(/syncctl-dlq-error-message=[^,]*JSON/i);

    // The broker's own Java console consumer reads the same record and headers.
    const java = await javaConsoleConsume(testBrokers(), harness.dlqTopic, 1);
    expect(java).toContain(`syncctl-dlq-source-topic:${harness.customerTopic}`);
    expect(java).toContain(`syncctl-dlq-consumer-group:${harness.group}`);
    expect(java).toContain('|C-kcat-bad|{"this is": "not an envelope"');
  });
});
