import { spawn } from 'node:child_process';

/**
 * A test runner that dies without its teardown (SIGKILL, a CI timeout) would leave its Kafka broker
 * running for good. This detached watcher kills the broker and removes its directory once the runner
 * is gone, and leaves by itself once the broker is gone (normal teardown).
 */
const SCRIPT = `
const { rmSync } = require('node:fs');
const [runner, broker] = process.argv.slice(1, 3).map(Number);
const dir = process.argv[3];
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
setInterval(() => {
  if (!alive(broker)) process.exit(0);
  if (alive(runner)) return;
  try { process.kill(broker, 'SIGKILL'); } catch {}
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}, 1000);
`;

export function watchBroker(runnerPid: number, brokerPid: number, dir = ''): number | undefined {
  const child = spawn(process.execPath, ['-e', SCRIPT, String(runnerPid), String(brokerPid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child.pid;
}
