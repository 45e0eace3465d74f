/**
 * The run lock on a PostgreSQL state store, from two processes: a session advisory lock that the
 * server frees when the holder's connection dies, however it died.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { CrmServer } from '../../fixtures/crm/server.js';
import { openDb } from '../../src/state/db.js';
import { Runs } from '../../src/state/runs.js';
import { runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import type { Harness } from '../helpers/consume-harness.js';
import { startJobWorld, type JobWorld } from '../helpers/job-world.js';

let world: JobWorld;
let crm: CrmServer;
let h: Harness;
let env: Record<string, string | undefined>;
const children: Child[] = [];

beforeAll(async () => {
  world = await startJobWorld({ state: 'postgres', seed: 8, customers: 40, products: 10, tag: 'runpg' });
  ({ crm, h, env } = world);
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
});

afterAll(async () => {
  await world?.close();
});

function runArgs(...extra: string[]): string[] {
  return world.args('run', ['--job', 'nightly', '--session-timeout', '6', ...extra]);
}

it('two runs on one PostgreSQL store: the second exits 4 naming the holder; after SIGKILL the next takes over', async () => {
  expect(h.state).toMatch(/^postgres:\/\//);
  crm.control.setFaults({ latencyMs: 10_000 });
  const before = crm.control.stats().requests;
  const first = startSyncctl(runArgs(), env);
  children.push(first);
  let holder = '';
  try {
    await waitFor('the first run to fetch', () => crm.control.stats().requests > before, 30_000);
    const second = await runSyncctl(runArgs(), { env });
    expect(second.code, second.stderr).toBe(4);
    expect(second.stderr).toMatch(
      new RegExp(
        `lock run:nightly is held by run [0-9a-f-]{36} \\(pid ${first.process.pid} on .+\\) since \\d{4}-`,
      ),
    );
    holder = /held by run ([0-9a-f-]{36})/.exec(second.stderr)![1]!;
    first.process.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
  } finally {
    crm.control.setFaults({});
  }
  // The server ends the dead process's session (and frees its advisory lock) once it sees the
  // connection close; the next run gets the lock then.
  let third = await runSyncctl([...runArgs(), '--json'], { env });
  for (let i = 0; i < 5 && third.code === 4; i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    third = await runSyncctl([...runArgs(), '--json'], { env });
  }
  if (third.code === 75 && /coordinator is loading/.test(third.stderr))
    third = await runSyncctl([...runArgs(), '--json'], { env });
  expect(third.code, third.stderr).toBe(0);
  expect((JSON.parse(third.stdout) as { outcome: string }).outcome).toBe('ok');
  expect(third.stderr).toContain(`run ${holder} of job nightly`);

  const db = await openDb(h.state);
  try {
    const runs = await (await Runs.open(db)).recent(10, 'nightly');
    expect(runs.find((r) => r.id === holder)?.outcome).toBe('killed');
    expect(runs[0]!.outcome).toBe('ok');
  } finally {
    await db.close();
  }
});
