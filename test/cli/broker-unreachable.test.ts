import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** A TCP listener that accepts connections and never writes a byte, like a wrong port behind a proxy. */
let silent: Server;
const sockets = new Set<Socket>();
let silentAddress: string;
let dir: string;

beforeAll(async () => {
  dir = tempDir('syncctl-unreachable-');
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  silentAddress = `127.0.0.1:${address.port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

function env() {
  return isolatedEnv({ SYNCCTL_ANALYTICS_TOKEN: 'token', SYNCCTL_CRM_TOKEN: 'token' });
}

describe('a broker address that does not answer', () => {
  it('every Kafka command exits 75 naming the address, within --connect-timeout', async () => {
    const input = join(dir, 'one.ndjson');
    writeFileSync(input, '');
    const commands: string[][] = [
      ['publish', '-t', 'customer_data', '-i', input],
      ['fetch', '--source', 'crm', '--crm-url', 'http://127.0.0.1:9/', '--publish'],
      ['consume', '--once', '--analytics-url', 'http://127.0.0.1:9/'],
      ['topics', 'ensure'],
      ['topics', 'describe'],
    ];
    // One after another: five CLIs starting at once on a loaded 2-core machine measure the machine.
    const runs = [];
    for (const args of commands) {
      runs.push(
        await runSyncctl(['-b', silentAddress, '--connect-timeout', '2000', ...args], {
          env: env(),
          timeoutMs: 60_000,
        }),
      );
    }
    for (const [i, run] of runs.entries()) {
      const what = commands[i]!.join(' ');
      expect({ what, code: run.code }).toEqual({ what, code: 75 });
      expect(run.stderr).toContain(`cannot reach Kafka at ${silentAddress}`);
      expect(run.stderr).not.toMatch(/Broker not connected/);
      // kafkajs's own request timeout (30 s) must not be what ends it.
      expect(run.durationMs).toBeLessThan(20_000);
    }
  });

  it('uses the 5 s default, and SYNCCTL_CONNECT_TIMEOUT sets it too', async () => {
    const input = join(dir, 'two.ndjson');
    writeFileSync(input, '');
    const [byDefault, fromEnv] = await Promise.all([
      runSyncctl(['-b', silentAddress, 'publish', '-t', 'customer_data', '-i', input], { env: env() }),
      runSyncctl(['-b', silentAddress, 'publish', '-t', 'customer_data', '-i', input], {
        env: { ...env(), SYNCCTL_CONNECT_TIMEOUT: '1000' },
      }),
    ]);
    expect(byDefault.code).toBe(75);
    expect(byDefault.stderr).toMatch(/no answer within 5000 ms/);
    expect(byDefault.durationMs).toBeLessThan(20_000);
    expect(fromEnv.code).toBe(75);
    expect(fromEnv.stderr).toMatch(/no answer within 1000 ms/);
  });

  it('a refused connection is also 75 and names the address', async () => {
    const run = await runSyncctl(['-b', '127.0.0.1:1', '--connect-timeout', '3000', 'topics', 'describe'], {
      env: env(),
    });
    expect(run.code).toBe(75);
    expect(run.stderr).toContain('cannot reach Kafka at 127.0.0.1:1');
    expect(run.durationMs).toBeLessThan(20_000);
  });

  it('rejects a --connect-timeout that is not a positive integer', async () => {
    const run = await runSyncctl(['--connect-timeout', '0', 'topics', 'describe'], { env: env() });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--connect-timeout must be an integer/);
  });
});
