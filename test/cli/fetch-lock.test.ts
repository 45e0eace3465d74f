import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const TOKEN = 'crm-lock-token';
const servers: CrmServer[] = [];
const children: Child[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  while (servers.length > 0) await servers.pop()?.close();
});

it('a second fetch of the same source exits 4 naming the run that holds fetch:<source>', async () => {
  // Latency keeps the first fetch running while the second starts.
  const server = await startCrmServer({
    seed: 4,
    count: 2000,
    products: 10,
    token: TOKEN,
    faults: { latencyMs: 400 },
  });
  servers.push(server);
  const dir = tempDir('syncctl-fetch-lock-');
  const env = isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_STATE: join(dir, 'state.db'),
  });
  const first = startSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'a.ndjson')], env);
  children.push(first);
  await waitFor('the first fetch to hold its lock', () => server.control.stats().requests > 0, 30_000);
  const second = await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'b.ndjson')], { env });
  expect(second.code).toBe(4);
  expect(second.stderr).toMatch(
    new RegExp(
      `lock fetch:crm is held by run [0-9a-f-]{36} \\(pid ${first.process.pid} on .+\\) since \\d{4}-`,
    ),
  );
  expect((await first.exited).code).toBe(0);
  const third = await runSyncctl(['fetch', '--source', 'crm', '--out', join(dir, 'c.ndjson')], { env });
  expect(third.code).toBe(0);
});
