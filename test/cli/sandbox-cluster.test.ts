import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, parseBrokers, withAdmin } from '../../src/connectors/kafka.js';
import { isAlive } from '../../src/sandbox/kafka-broker.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('syncctl-sandbox-cluster-');
const env = isolatedEnv({ SYNCCTL_SANDBOX_DIR: dir });

afterAll(async () => {
  await runSyncctl(['sandbox', 'down'], { env, timeoutMs: 60_000 });
}, 90_000);

/** The `export K='V'` lines of `sandbox env` as a map. */
function exports(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const match of text.matchAll(/^export (\w+)='([^']*)'$/gm)) vars[match[1]!] = match[2]!;
  return vars;
}

describe('syncctl sandbox up --brokers 3', () => {
  it('refuses a cluster size out of range before starting anything', async () => {
    const run = await runSyncctl(['sandbox', 'up', '--brokers', '9'], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--broker-count must be an integer from 1 to 5/);
  });

  it('runs three KRaft brokers that topics replicate over, shows each, and stops them all', async () => {
    const up = await runSyncctl(['--json', 'sandbox', 'up', '--brokers', '3'], { env, timeoutMs: 300_000 });
    expect(up.stderr).not.toMatch(/error/);
    expect(up.code).toBe(0);
    const started = JSON.parse(up.stdout);
    const addresses = parseBrokers(started.kafka as string);
    expect(addresses).toHaveLength(3);
    expect(new Set(addresses).size).toBe(3);
    expect(started).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 2, alreadyRunning: false });

    const status = await runSyncctl(['--json', 'sandbox', 'status'], { env });
    expect(status.code).toBe(0);
    const state = JSON.parse(status.stdout);
    expect(state.running).toBe(true);
    const nodes = state.kafka.nodes as { id: number; pid: number; broker: string; alive: boolean }[];
    expect(nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(nodes.map((n) => n.broker)).toEqual(addresses);
    expect(nodes.every((n) => n.alive && isAlive(n.pid))).toBe(true);
    const text = await runSyncctl(['sandbox', 'status'], { env });
    expect(text.stdout).toContain('3 of 3 brokers up (replication factor 3, min.insync.replicas=2)');
    for (const n of nodes) expect(text.stdout).toContain(`broker ${n.id}: ${n.broker} pid ${n.pid} (up)`);

    const vars = exports((await runSyncctl(['sandbox', 'env'], { env })).stdout);
    expect(vars.SYNCCTL_BROKERS).toBe(started.kafka);
    expect(vars.SYNCCTL_REPLICATION_FACTOR).toBe('3');

    // What an operator does after `eval "$(syncctl sandbox env)"`: topics get a copy on every broker.
    const ensure = await runSyncctl(['--json', 'topics', 'ensure'], { env: { ...env, ...vars } });
    expect(ensure.code).toBe(0);
    const kafka = createKafka({ brokers: addresses, clientId: 'sandbox-cluster-test' });
    await withAdmin(kafka, addresses, async (admin) => {
      const metadata = await admin.fetchTopicMetadata({ topics: ['customer_data', 'syncctl_dlq'] });
      for (const topic of metadata.topics)
        for (const p of topic.partitions) expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: 'customer_data', configNames: ['min.insync.replicas'] }],
      });
      expect(configs.resources[0]?.configEntries[0]?.configValue).toBe('2');
    });

    const again = await runSyncctl(['--json', 'sandbox', 'up', '--brokers', '3'], { env });
    expect(JSON.parse(again.stdout)).toMatchObject({ kafka: started.kafka, alreadyRunning: true });

    const down = await runSyncctl(['sandbox', 'down'], { env, timeoutMs: 90_000 });
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/stopped: .*kafka/);
    expect(nodes.some((n) => isAlive(n.pid))).toBe(false);
  }, 420_000);
});
