import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

// Every case here used to hang, crash with a misleading errno or exit with the wrong code; none may
// take long, so each run is bounded and a hang shows up as a SIGKILL instead of a stuck test.
const BOUND_MS = 10_000;

let dir: string;
beforeAll(() => {
  dir = tempDir('syncctl-state-');
});

/** A fetch that fails at the state store, before any CRM request (nothing listens on port 1). */
function fetchWithState(state: string): Promise<CliRun> {
  return runSyncctl(
    ['fetch', '--source', 'crm', '--full', '--state', state, '--out', join(dir, 'out.ndjson')],
    {
      env: isolatedEnv({ SYNCCTL_CRM_URL: 'http://127.0.0.1:1', SYNCCTL_CRM_TOKEN: 'token' }),
      timeoutMs: BOUND_MS,
    },
  );
}

function expectConfigError(run: CliRun, ...mentions: string[]): void {
  expect(run.signal, `killed after ${run.durationMs} ms: ${run.stderr}`).toBeNull();
  expect(run.code, run.stderr).toBe(2);
  for (const text of mentions) expect(run.stderr).toContain(text);
  expect(run.stderr).toContain('--state');
}

describe('a SQLite --state path that cannot work', () => {
  it('under /proc exits 2 naming the path instead of hanging in mkdir', async () => {
    const run = await fetchWithState('/proc/syncctl/state.db');
    expectConfigError(run, '/proc/syncctl');
  });

  it('whose parent is a file says so instead of EEXIST', async () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const run = await fetchWithState(join(file, 'state.db'));
    expectConfigError(run, `${file} is a file, not a directory`);
    expect(run.stderr).not.toContain('EEXIST');
  });

  it('whose grandparent is a file says so instead of ENOTDIR', async () => {
    const file = join(dir, 'plain-file-2');
    writeFileSync(file, 'x');
    const run = await fetchWithState(join(file, 'sub', 'state.db'));
    expectConfigError(run, `${file} is a file, not a directory`);
  });

  it('that is a directory says so', async () => {
    const target = join(dir, 'a-directory');
    mkdirSync(target);
    const run = await fetchWithState(target);
    expectConfigError(run, `${target} is a directory, not a SQLite database file`);
  });

  it('that is not a SQLite database says so', async () => {
    const target = join(dir, 'not-a-db.db');
    writeFileSync(target, 'this is not a database\n'.repeat(100));
    const run = await fetchWithState(target);
    expectConfigError(run, `${target} is not a SQLite database`);
  });

  it('in a read-only directory says so', async () => {
    // root ignores directory modes; sysfs refuses new files even to root.
    let target: string;
    if (process.getuid?.() === 0) {
      target = '/sys/syncctl-state.db';
    } else {
      const readOnly = join(dir, 'read-only');
      mkdirSync(readOnly);
      chmodSync(readOnly, 0o555);
      target = join(readOnly, 'state.db');
    }
    const run = await fetchWithState(target);
    expectConfigError(run, target);
    expect(run.stderr).toMatch(/not writable|read-only|permission/i);
  });
});

describe('an unreachable PostgreSQL --state', () => {
  const sockets = new Set<Socket>();
  let silent: Server;
  let silentPort: number;

  beforeAll(async () => {
    // Accepts TCP and never says a word, like a firewall that drops the handshake's answer.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  function consumeWithState(state: string, timeoutMs = BOUND_MS): Promise<CliRun> {
    return runSyncctl(['--state', state, 'consume', '--once', '-b', '127.0.0.1:1'], {
      env: isolatedEnv({ SYNCCTL_ANALYTICS_URL: 'http://127.0.0.1:1', SYNCCTL_ANALYTICS_TOKEN: 't' }),
      timeoutMs,
    });
  }

  it('refusing connections exits 75 naming host:port but never the password', async () => {
    const run = await consumeWithState('postgres://user:Secr3tPw@127.0.0.1:1/test');
    expect(run.signal, run.stderr).toBeNull();
    expect(run.code, run.stderr).toBe(75);
    expect(run.stderr).toContain('127.0.0.1:1');
    expect(run.stderr + run.stdout).not.toContain('Secr3tPw');
  });

  it('that accepts TCP but never answers times out and exits 75', async () => {
    const run = await consumeWithState(`postgres://user:Secr3tPw@127.0.0.1:${silentPort}/test`, 30_000);
    expect(run.signal, `killed after ${run.durationMs} ms`).toBeNull();
    expect(run.code, run.stderr).toBe(75);
    expect(run.durationMs).toBeLessThan(20_000);
    expect(run.stderr).toContain(`127.0.0.1:${silentPort}`);
    expect(run.stderr + run.stdout).not.toContain('Secr3tPw');
  }, 60_000);

  it('naming a database that does not exist is a configuration error (2), not retryable', async () => {
    const run = await consumeWithState('postgres://postgres@127.0.0.1:5432/syncctl_no_such_db');
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('syncctl_no_such_db');
    expect(run.stderr).toContain('--state');
  });
});
