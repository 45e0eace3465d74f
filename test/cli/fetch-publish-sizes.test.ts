import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedCustomers } from '../../fixtures/data/customers.js';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { waitForTopicLeaders } from '../../src/connectors/kafka.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { readAll, testBrokers, testKafka, uniqueName } from '../helpers/kafka.js';
import { duplicates, tempDir } from './fetch-helpers.js';

const TOKEN = 'crm-test-token';
const servers: CrmServer[] = [];

afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.close();
});

describe('syncctl fetch --publish: envelopes over the topic size limit', () => {
  it('go to the fetch reject file with size and limit; the rest is published (exit 3)', async () => {
    const server = await startCrmServer({ seed: 7, count: 150, products: 50, token: TOKEN });
    servers.push(server);
    const dir = tempDir();
    const topic = uniqueName('fetch-oversize');
    const admin = testKafka().admin();
    await admin.connect();
    try {
      // Customer envelopes are ~0.4–0.9 KB; with key and headers about half are over 1200 bytes.
      await admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'max.message.bytes', value: '1200' }] }],
      });
      await waitForTopicLeaders(admin, [topic], 60_000);
    } finally {
      await admin.disconnect();
    }
    const rejectsPath = join(dir, 'rejects.ndjson');
    const run = await runSyncctl(
      [
        '--json',
        'fetch',
        '--source',
        'crm',
        '--publish',
        '--topic',
        topic,
        '--crm-page-size',
        '40',
        '--rejects',
        rejectsPath,
      ],
      {
        env: isolatedEnv({
          SYNCCTL_CRM_URL: server.url,
          SYNCCTL_CRM_TOKEN: TOKEN,
          SYNCCTL_BROKERS: testBrokers(),
          SYNCCTL_STATE: join(dir, 'state.db'),
        }),
        cwd: dir,
      },
    );
    expect(run.stderr).not.toMatch(/error/);
    expect(run.code).toBe(3);
    expect(existsSync(rejectsPath)).toBe(true);
    const rejects = readFileSync(rejectsPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { reason: string; raw: string; page: number });
    expect(rejects.length).toBeGreaterThan(10);
    for (const r of rejects) {
      expect(r.reason).toMatch(
        new RegExp(
          `^customer C\\d+: record too large: \\d+ bytes, over the 1200-byte limit \\(max.message.bytes of topic ${topic}\\)$`,
        ),
      );
    }
    const published = (await readAll(topic)).map((r) => r.key as string);
    const rejected = rejects.map((r) => (JSON.parse(r.raw) as { id: string }).id);
    expect(published.length).toBeGreaterThan(10);
    // Every customer exactly once: in the topic or in the reject file.
    const all = [...published, ...rejected];
    expect(duplicates(all)).toEqual([]);
    expect(all.sort()).toEqual(
      [...expectedCustomers({ seed: 7, count: 150, products: 50 })].map((c) => c.id).sort(),
    );
  });
});
