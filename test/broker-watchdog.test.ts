import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { watchBroker } from './helpers/broker-watchdog.js';
import { tempDir } from './helpers/temp.js';

const sleepers: ChildProcess[] = [];
function sleeper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  sleepers.push(child);
  return child;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return what();
}

afterEach(() => {
  for (const child of sleepers.splice(0)) child.kill('SIGKILL');
});

it('kills the broker and removes its directory when the test runner dies without its teardown', async () => {
  const runner = sleeper();
  const broker = sleeper();
  const dir = join(tempDir('syncctl-watchdog-'), 'kafka');
  mkdirSync(dir);
  const watcher = watchBroker(runner.pid as number, broker.pid as number, dir) as number;
  await new Promise((r) => setTimeout(r, 1500));
  expect(alive(broker.pid as number)).toBe(true);
  runner.kill('SIGKILL');
  expect(await until(() => broker.exitCode !== null || broker.signalCode !== null, 10_000)).toBe(true);
  expect(existsSync(dir)).toBe(false);
  expect(await until(() => !alive(watcher), 5_000)).toBe(true);
});

it('leaves by itself when the broker stops normally', async () => {
  const runner = sleeper();
  const broker = sleeper();
  const watcher = watchBroker(runner.pid as number, broker.pid as number) as number;
  broker.kill('SIGTERM');
  expect(await until(() => !alive(watcher), 5_000)).toBe(true);
  expect(alive(runner.pid as number)).toBe(true);
});
