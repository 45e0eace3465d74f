import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/sandbox/kafka-broker.js';
import { SANDBOX_ANALYTICS_TOKEN, SANDBOX_CRM_TOKEN } from '../../src/sandbox/sandbox.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('syncctl-sandbox-');
const env = isolatedEnv({ SYNCCTL_SANDBOX_DIR: dir });

afterAll(async () => {
  await runSyncctl(['sandbox', 'down'], { env });
});

function processesUsing(path: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', path], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('syncctl sandbox', () => {
  it('up → status → env → up again → down, leaving no process behind', async () => {
    const up = await runSyncctl(['--json', 'sandbox', 'up'], { env, timeoutMs: 180_000 });
    expect(up.stderr).not.toMatch(/error/);
    expect(up.code).toBe(0);
    const started = JSON.parse(up.stdout);
    expect(started.kafka).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(started.alreadyRunning).toBe(false);
    for (const service of ['crm', 'inventory', 'analytics'])
      expect(started[service]).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);

    const status = await runSyncctl(['--json', 'sandbox', 'status'], { env });
    expect(status.code).toBe(0);
    const state = JSON.parse(status.stdout);
    expect(state.running).toBe(true);
    const pids: number[] = [
      state.kafka.pid,
      ...Object.values(state.services).map((s) => (s as { pid: number }).pid),
    ];
    expect(pids.every(isAlive)).toBe(true);

    const shellEnv = await runSyncctl(['sandbox', 'env'], { env });
    expect(shellEnv.stdout).toContain(`export SYNCCTL_BROKERS='${started.kafka}'`);
    expect(shellEnv.stdout).toMatch(/export SYNCCTL_CRM_URL='http:\/\/127\.0\.0\.1:\d+/);
    expect(shellEnv.stdout).toMatch(/export SYNCCTL_INVENTORY_WSDL='.*\?wsdl'/);
    expect(shellEnv.stdout).toMatch(/export SYNCCTL_ANALYTICS_URL=/);
    // The tokens are the point of `sandbox env`: printed as they are, not masked.
    expect(shellEnv.stdout).toContain(`export SYNCCTL_CRM_TOKEN='${SANDBOX_CRM_TOKEN}'`);
    expect(shellEnv.stdout).toContain(`export SYNCCTL_ANALYTICS_TOKEN='${SANDBOX_ANALYTICS_TOKEN}'`);

    // The broker really serves: topics can be created against the printed address.
    const topics = await runSyncctl(['-b', started.kafka, '--json', 'topics', 'ensure'], { env });
    expect(topics.code).toBe(0);

    const again = await runSyncctl(['--json', 'sandbox', 'up'], { env });
    expect(JSON.parse(again.stdout)).toMatchObject({ kafka: started.kafka, alreadyRunning: true });

    const down = await runSyncctl(['sandbox', 'down'], { env, timeoutMs: 60_000 });
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/stopped: .*kafka/);
    expect(pids.some(isAlive)).toBe(false);
    expect(processesUsing(dir)).toEqual([]);

    const after = await runSyncctl(['sandbox', 'status'], { env });
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/not running/);
    const noEnv = await runSyncctl(['sandbox', 'env'], { env });
    expect(noEnv.code).toBe(1);
    expect(noEnv.stderr).toMatch(/no sandbox is running/);
    // Its `sandbox up` alone may take 180 s; on a loaded 2-core machine up plus down took 100 s,
    // near the suite's 120 s default.
  }, 300_000);
});
