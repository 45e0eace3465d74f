import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedCustomers } from '../../fixtures/data/customers.js';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { createTopic, readAll, testBrokers, uniqueName, type ReadRecord } from '../helpers/kafka.js';
import { duplicates, idsOf, listCheckpoints, readCheckpoint, readNdjson, tempDir } from './fetch-helpers.js';

const TOKEN = 'crm-kill-token';
const COUNT = 1500;
const servers: CrmServer[] = [];
const children: Child[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  while (servers.length > 0) await servers.pop()?.close();
});

async function slowCrm(): Promise<CrmServer> {
  // Latency keeps the run going long enough to be killed in the middle.
  const server = await startCrmServer({
    seed: 11,
    count: COUNT,
    products: 40,
    token: TOKEN,
    faults: { latencyMs: 60 },
  });
  servers.push(server);
  return server;
}

const ALL_IDS = [...expectedCustomers({ seed: 11, count: COUNT, products: 40 })].map((c) => c.id).sort();

function envFor(server: CrmServer, dir: string) {
  return isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_BROKERS: testBrokers(),
    SYNCCTL_STATE: join(dir, 'state.db'),
  });
}

function summaryOf(text: string): FetchSummary {
  return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as FetchSummary;
}

/** Every id in the topic, and every copy of an id carrying the same idempotency key (nothing changed in between). */
function expectEveryRecordOnce(records: ReadRecord[]): void {
  const keysById = new Map<string, Set<string>>();
  for (const r of records) {
    const id = r.key as string;
    const set = keysById.get(id) ?? new Set<string>();
    set.add(r.headers['syncctl-idempotency-key'] as string);
    keysById.set(id, set);
  }
  expect([...keysById.keys()].sort()).toEqual(ALL_IDS);
  for (const [id, keys] of keysById) expect(keys.size, id).toBe(1);
}

describe('fetch survives SIGKILL', () => {
  it('a killed `fetch --publish` reruns to every record in Kafka, duplicates only with identical keys', async () => {
    const server = await slowCrm();
    const dir = tempDir();
    const state = join(dir, 'state.db');
    const topic = uniqueName('fetch-kill');
    await createTopic(topic, 3);
    const env = envFor(server, dir);
    const args = [
      '--json',
      'fetch',
      '--source',
      'crm',
      '--publish',
      '--topic',
      topic,
      '--crm-page-size',
      '25',
    ];

    const child = startSyncctl(args, env);
    children.push(child);
    await waitFor('a few durable pages', () => {
      const run = readCheckpoint<{ run: { pages: number } | null }>(state, 'fetch:crm')?.run;
      return (run?.pages ?? 0) >= 8;
    });
    child.process.kill('SIGKILL');
    expect((await child.exited).signal).toBe('SIGKILL');

    const progress = readCheckpoint<{ highWater: string | null; run: { pages: number; records: number } }>(
      state,
      'fetch:crm',
    );
    // Killed mid-run: progress is stored, the incremental mark has not moved.
    expect(progress?.highWater).toBeNull();
    expect(progress?.run.pages).toBeGreaterThanOrEqual(8);
    expect(progress?.run.pages).toBeLessThan(COUNT / 25);
    const before = await readAll(topic);
    // What the checkpoint claims is really in Kafka.
    expect(before.length).toBeGreaterThanOrEqual(progress?.run.records ?? Infinity);

    const rerun = await runSyncctl(args, { env });
    expect(rerun.code, rerun.stderr).toBe(0);
    const summary = summaryOf(rerun.stdout);
    expect(summary).toMatchObject({ status: 'completed', resumed: true });
    expect(summary.records).toBe(COUNT - (progress?.run.records ?? 0));
    const records = await readAll(topic);
    expectEveryRecordOnce(records);
    // At most the page in flight at the kill (plus one fetched ahead) is published twice.
    expect(records.length - COUNT).toBeLessThanOrEqual(2 * 25);
    expect(readCheckpoint<{ highWater: string | null; run: unknown }>(state, 'fetch:crm')).toMatchObject({
      run: null,
      highWater: expect.any(String),
    });
  });

  it('a killed `fetch --out` resumes into the same file with every record exactly once', async () => {
    const server = await slowCrm();
    const dir = tempDir();
    const state = join(dir, 'state.db');
    const out = join(dir, 'customers.ndjson');
    const env = envFor(server, dir);
    const args = ['fetch', '--source', 'crm', '--out', out, '--crm-page-size', '25'];
    const child = startSyncctl(args, env);
    children.push(child);
    await waitFor('a few durable pages', () => {
      const run = readCheckpoint<{ run: { pages: number } | null }>(state, 'fetch:crm')?.run;
      return (run?.pages ?? 0) >= 6;
    });
    child.process.kill('SIGKILL');
    await child.exited;
    const rerun = await runSyncctl(args, { env });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/resuming the interrupted incremental run of crm after page \d+/);
    const ids = idsOf(readNdjson(out));
    // The file is cut back to the last checkpointed page before appending: no duplicates, no gaps.
    expect(duplicates(ids)).toEqual([]);
    expect([...ids].sort()).toEqual(ALL_IDS);
  });

  it('a killed backfill resumes its unfinished windows and never re-fetches finished ones', async () => {
    const server = await slowCrm();
    const dir = tempDir();
    const state = join(dir, 'state.db');
    const topic = uniqueName('fetch-kill-backfill');
    await createTopic(topic, 3);
    const env = envFor(server, dir);
    // 1500 records 10 s apart span ~4.2 h: 30-minute windows make 9 of them, 2 at a time.
    const args = [
      '--json',
      'fetch',
      '--source',
      'crm',
      '--since',
      '2020-01-01T00:00:00Z',
      '--until',
      '2020-01-01T04:30:00Z',
      '--window',
      '30m',
      '--concurrency',
      '2',
      '--publish',
      '--topic',
      topic,
      '--crm-page-size',
      '20',
    ];
    const child = startSyncctl(args, env);
    children.push(child);
    const windows = () =>
      listCheckpoints(state, 'fetch:crm:backfill:').filter((c) => c.value.kind === 'window');
    await waitFor('one finished window and another one part-way', () => {
      const w = windows();
      return (
        w.some((c) => c.value.status === 'done') &&
        w.some((c) => c.value.status === 'running' && (c.value.pages as number) >= 2)
      );
    });
    child.process.kill('SIGKILL');
    await child.exited;
    const done = windows().filter((c) => c.value.status === 'done').length;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(9);

    const rerun = await runSyncctl(args, { env });
    expect(rerun.code, rerun.stderr).toBe(0);
    const summary = summaryOf(rerun.stdout);
    expect(summary.backfill).toMatchObject({ windows: 9, alreadyDone: done, failed: 0, remaining: 0 });
    expect(summary.backfill?.resumed).toBeGreaterThanOrEqual(1);
    expect(summary.backfill?.completed).toBe(9 - done);
    const records = await readAll(topic);
    expectEveryRecordOnce(records);
    // Backfills leave the incremental checkpoint alone.
    expect(readCheckpoint(state, 'fetch:crm')).toBeUndefined();

    // Everything is finished now: the same command fetches nothing.
    const again = await runSyncctl(args, { env });
    expect(again.code).toBe(0);
    expect(summaryOf(again.stdout)).toMatchObject({
      records: 0,
      requests: 0,
      backfill: { alreadyDone: 9, completed: 0 },
    });
    expect((await readAll(topic)).length).toBe(records.length);

    // --restart fetches the range again from scratch.
    const restarted = await runSyncctl([...args, '--restart'], { env });
    expect(restarted.code).toBe(0);
    expect(summaryOf(restarted.stdout)).toMatchObject({
      records: COUNT,
      backfill: { completed: 9, alreadyDone: 0 },
    });
  });

  it('SIGTERM stops after the page in flight, checkpoints it and exits 75 with how to continue', async () => {
    const server = await slowCrm();
    const dir = tempDir();
    const state = join(dir, 'state.db');
    const out = join(dir, 'customers.ndjson');
    const env = envFor(server, dir);
    const child = startSyncctl(['fetch', '--source', 'crm', '--out', out, '--crm-page-size', '25'], env);
    children.push(child);
    await waitFor('a few durable pages', () => {
      const run = readCheckpoint<{ run: { pages: number } | null }>(state, 'fetch:crm')?.run;
      return (run?.pages ?? 0) >= 3;
    });
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit.code).toBe(75);
    expect(child.stderr()).toMatch(
      /fetch interrupted; \d+ page\(s\) with \d+ record\(s\) before it are written and checkpointed/,
    );
    expect(child.stderr()).toMatch(/rerun `syncctl fetch --source crm --out/);
    const run = readCheckpoint<{ run: { records: number } }>(state, 'fetch:crm')?.run;
    // Exactly the checkpointed records are in the file: nothing claimed that is not there.
    expect(readNdjson(out)).toHaveLength(run?.records ?? -1);
  });
});
