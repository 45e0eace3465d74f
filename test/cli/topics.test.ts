import { describe, expect, it } from 'vitest';
import { ensureTopics } from '../../src/stages/topics.js';
import { runSyncctl } from '../helpers/cli.js';
import { testBrokers, testKafka, uniqueName } from '../helpers/kafka.js';

describe('syncctl topics ensure (real broker)', () => {
  it('creates the topics once; a second run changes nothing and says they exist', async () => {
    // The command's topic names are fixed; run it through the stage with private names, and the CLI once.
    const names = [uniqueName('cust'), uniqueName('prod'), uniqueName('dlq')];
    const specs = names.map((name, i) => ({
      name,
      partitions: i === 2 ? 1 : 4,
      replicationFactor: 1,
      configs: { 'retention.ms': '86400000' },
    }));
    const first = await ensureTopics({ kafka: testKafka(), brokers: [testBrokers()], topics: specs });
    expect(first.topics.map((t) => t.status)).toEqual(['created', 'created', 'created']);
    const second = await ensureTopics({ kafka: testKafka(), brokers: [testBrokers()], topics: specs });
    expect(second.topics.map((t) => t.status)).toEqual(['exists', 'exists', 'exists']);
    expect(second.created).toBe(0);
    const admin = testKafka().admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: names });
    await admin.disconnect();
    expect(meta.topics.map((t) => t.partitions.length).sort()).toEqual([1, 4, 4]);
  });

  it('reports an existing topic that conflicts (partitions, config) instead of accepting it', async () => {
    const name = uniqueName('conflict');
    await ensureTopics({
      kafka: testKafka(),
      brokers: [testBrokers()],
      topics: [{ name, partitions: 2, replicationFactor: 1, configs: {} }],
    });
    const result = await ensureTopics({
      kafka: testKafka(),
      brokers: [testBrokers()],
      topics: [{ name, partitions: 6, replicationFactor: 1, configs: { 'cleanup.policy': 'compact' } }],
    });
    expect(result.conflicts).toBe(1);
    expect(result.topics[0]!.conflicts).toEqual([
      'has 2 partitions, 6 wanted',
      'has cleanup.policy=delete, compact wanted',
    ]);
  });

  it('through the CLI: creates, then reports existing, then flags a conflict with exit 1', async () => {
    const b = testBrokers();
    const [c, p, d] = [uniqueName('c'), uniqueName('p'), uniqueName('d')];
    const ensure = (...extra: string[]) =>
      runSyncctl([
        '-b',
        b,
        'topics',
        'ensure',
        '--customer-topic',
        c,
        '--product-topic',
        p,
        '--dlq-topic',
        d,
        ...extra,
      ]);
    const first = await ensure('--json', '--partitions', '3');
    expect(first.code).toBe(0);
    const firstResult = JSON.parse(first.stdout);
    expect(firstResult.topics.map((t: { name: string }) => t.name)).toEqual([c, p, d]);
    const again = await ensure('--json', '--partitions', '3');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: 0, existing: 3, conflicts: 0 });
    const boxed = await ensure('--partitions', '3', '-o', 'table');
    expect(boxed.stdout).toMatch(new RegExp(`${c}\\s*│\\s*exists`));
    // Not a terminal: plain tab-separated rows, no box drawing and no escape sequences.
    const plain = await ensure('--partitions', '3');
    expect(plain.stdout.split('\n')).toContain(`${c}\texists\t3\t1\t`);
    expect(plain.stdout.split('\n')[0]).toBe('topic\tstatus\tpartitions\treplication\tnotes');
    expect(plain.stdout).not.toMatch(/[│─┌]/);
    expect(plain.stdout).not.toContain('\u001b');
    const bare = await ensure('--partitions', '3', '-o', 'plain', '--no-headers');
    expect(bare.stdout.trim().split('\n')).toHaveLength(3);
    expect(bare.stdout).not.toContain('topic\tstatus');
    const asJson = await ensure('--partitions', '3', '-o', 'json');
    expect(JSON.parse(asJson.stdout)).toMatchObject({ existing: 3 });
    const conflict = await ensure('--partitions', '5');
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(new RegExp(`topic ${c} exists but has 3 partitions, 5 wanted`));
  });

  it('rejects a bad flag value as a usage error', async () => {
    const run = await runSyncctl(['-b', testBrokers(), 'topics', 'ensure', '--partitions', 'zero']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--partitions must be an integer/);
  });
});
