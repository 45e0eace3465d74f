import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { CrmSource } from '../../src/connectors/crm-source.js';
import { contentHashOf, type Envelope } from '../../src/records/envelope.js';
import { openDb, type Db } from '../../src/state/db.js';
import { Checkpoints } from '../../src/state/checkpoints.js';
import { parseWindowSpec } from '../../src/stages/fetch/plan.js';
import { fetch, type FetchOptions } from '../../src/stages/fetch.js';
import { duplicates, idsOf, readNdjson, tempDir } from '../cli/fetch-helpers.js';
import { uniqueName } from '../helpers/kafka.js';

const TOKEN = 'stage-token';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function crm(options: CrmServerOptions = {}): Promise<CrmServer> {
  const server = await startCrmServer({ seed: 3, count: 200, products: 20, token: TOKEN, ...options });
  cleanups.push(() => server.close());
  return server;
}

async function sqlite(dir: string): Promise<Db> {
  const db = await openDb(join(dir, 'state.db'));
  cleanups.push(() => db.close());
  return db;
}

function source(server: CrmServer, pageSize = 20): CrmSource {
  return new CrmSource({ baseUrl: server.url, token: TOKEN, pageSize, retries: 1, backoffLimitMs: 50 });
}

/** A real sink that takes its time, recording how far the source had got at each write. */
class SlowSink extends Writable {
  readonly lines: string[] = [];
  completed = 0;
  /** Requests the source had made beyond the pages already durable, when each write completed. */
  readonly aheadAtDone: number[] = [];

  constructor(
    private readonly server: CrmServer,
    private readonly delayMs: number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.lines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== ''),
    );
    setTimeout(() => {
      this.aheadAtDone.push(this.server.control.stats().requests - this.completed);
      this.completed++;
      callback();
    }, this.delayMs);
  }
}

function currentHash(record: Record<string, unknown>): string {
  const data = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
  const deleted = data.archived === true || (data.deletedAt !== null && data.deletedAt !== undefined);
  return contentHashOf(deleted ? 'delete' : 'upsert', deleted ? null : data);
}

describe('fetch stage', () => {
  it('loses nothing when records change while paging: the next incremental run picks them up', async () => {
    const server = await crm({ faults: { updateWhilePaging: { every: 2, times: 3 } } });
    const dir = tempDir();
    const db = await sqlite(dir);
    const base = {
      connector: source(server),
      db,
      mode: { kind: 'incremental' } as const,
      rejectsPath: join(dir, 'r'),
    };
    const first = await fetch({ ...base, output: { kind: 'file', path: join(dir, 'a.ndjson') } });
    expect(first.status).toBe('completed');
    expect(server.control.stats().faultsFired.updateWhilePaging).toBe(3);
    server.control.setFaults({});
    const second = await fetch({ ...base, output: { kind: 'file', path: join(dir, 'b.ndjson') } });
    expect(second.status).toBe('completed');

    const seen = new Map<string, Set<string>>();
    for (const e of [...readNdjson(join(dir, 'a.ndjson')), ...readNdjson(join(dir, 'b.ndjson'))]) {
      const set = seen.get(e.id) ?? new Set();
      set.add(e.contentHash);
      seen.set(e.id, set);
    }
    // Every record's current version has been delivered by one of the two runs.
    for (const customer of server.control.store.records()) {
      expect(
        seen.get(customer.id)?.has(currentHash(customer as unknown as Record<string, unknown>)),
        customer.id,
      ).toBe(true);
    }
    expect(seen.size).toBe(200);
  });

  it('fetches the next page while the previous one is being made durable, and no further', async () => {
    const server = await crm();
    const dir = tempDir();
    const sink = new SlowSink(server, 80);
    const summary = await fetch({
      connector: source(server, 20),
      db: await sqlite(dir),
      mode: { kind: 'full' },
      output: { kind: 'stdout', stream: sink },
      rejectsPath: join(dir, 'r'),
    });
    expect(summary).toMatchObject({ status: 'completed', pages: 10, records: 200 });
    expect(sink.lines).toHaveLength(200);
    // Overlap: while a page is being written, the next one is requested…
    expect(Math.max(...sink.aheadAtDone)).toBe(2);
    // …but never more than that one page ahead (bounded memory: no queue of pages).
    for (const ahead of sink.aheadAtDone) expect(ahead).toBeLessThanOrEqual(2);
  });

  it('an interrupted run resumes into its file, cutting off whatever was written after the last checkpoint', async () => {
    const server = await crm({ faults: { latencyMs: 20 } });
    const dir = tempDir();
    const db = await sqlite(dir);
    const out = join(dir, 'c.ndjson');
    const controller = new AbortController();
    const options: FetchOptions = {
      connector: source(server, 20),
      db,
      mode: { kind: 'incremental' },
      output: { kind: 'file', path: out },
      rejectsPath: join(dir, 'r'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.pages === 4) controller.abort();
      },
    };
    const first = await fetch(options);
    expect(first.status).toBe('interrupted');
    expect(first.error?.code).toBe('E_INTERRUPTED');
    expect(first.checkpoint.after).toBeNull();
    expect(readNdjson(out)).toHaveLength(first.records);
    // A kill in the middle of a write leaves half a line behind.
    appendFileSync(out, '{"schemaVersion":1,"source":"crm","id":"C00');

    const second = await fetch({ ...options, signal: new AbortController().signal, onProgress: () => {} });
    expect(second).toMatchObject({ status: 'completed', resumed: true, records: 200 - first.records });
    const ids = idsOf(readNdjson(out));
    expect(duplicates(ids)).toEqual([]);
    expect(ids).toHaveLength(200);
  });

  it('--resume continues only interrupted work: nothing to do without it, the one open backfill with it', async () => {
    const server = await crm({ faults: { malformed: { from: 5, times: 2 } } });
    const dir = tempDir();
    const db = await sqlite(dir);
    const base = {
      connector: source(server, 10),
      db,
      output: { kind: 'file', path: join(dir, 'bf.ndjson') } as const,
      rejectsPath: join(dir, 'r'),
      concurrency: 1,
    };
    const nothing = await fetch({ ...base, mode: { kind: 'incremental' }, resumeOnly: true });
    expect(nothing).toMatchObject({ status: 'nothing-to-resume', records: 0, requests: 0 });

    const broken = await fetch({
      ...base,
      mode: {
        kind: 'backfill',
        since: '2020-01-01T00:00:00.000Z',
        until: '2020-01-01T01:00:00.000Z',
        window: parseWindowSpec('15m'),
      },
    });
    expect(broken.status).toBe('failed');
    expect(broken.error).toMatchObject({ code: 'E_SOURCE_MALFORMED' });
    expect(broken.stoppedAt).toMatchObject({ durablePages: expect.any(Number) });
    expect(broken.backfill).toMatchObject({ windows: 4, failed: 1 });

    const resumed = await fetch({ ...base, mode: { kind: 'incremental' }, resumeOnly: true });
    expect(resumed).toMatchObject({ status: 'completed', mode: 'backfill', resumed: true });
    expect(resumed.backfill).toMatchObject({ windows: 4, failed: 0, remaining: 0 });
    expect((resumed.backfill?.completed ?? 0) + (resumed.backfill?.alreadyDone ?? 0)).toBe(4);
    // The 200 customers (10 s apart: the first 34 minutes), each written exactly once over both runs.
    const ids = idsOf(readNdjson(join(dir, 'bf.ndjson')));
    expect(duplicates(ids)).toEqual([]);
    expect(ids).toHaveLength(200);
    const checkpoints = await Checkpoints.open(db);
    expect(await checkpoints.get('fetch:crm')).toBeUndefined();
  });

  it('an open-ended backfill keeps its end time until it finishes, so a rerun resumes the same range', async () => {
    const server = await crm({ faults: { malformed: { from: 3, times: 2 } } });
    const dir = tempDir();
    const db = await sqlite(dir);
    const options: FetchOptions = {
      connector: source(server, 25),
      db,
      output: { kind: 'file', path: join(dir, 'open.ndjson') },
      rejectsPath: join(dir, 'r'),
      mode: { kind: 'backfill', since: '2020-01-01T00:00:00.000Z', window: parseWindowSpec('1') },
    };
    const first = await fetch(options);
    expect(first.status).toBe('failed');
    const second = await fetch(options);
    expect(second).toMatchObject({ status: 'completed', resumed: true });
    expect(second.backfill?.until).toBe(first.backfill?.until);
    expect(idsOf(readNdjson(join(dir, 'open.ndjson')))).toHaveLength(200);
  });

  it('keeps its checkpoints in PostgreSQL as well', async () => {
    const server = await crm({ count: 60 });
    const dir = tempDir();
    const schema = uniqueName('fetch').replace('-', '_');
    const admin = new pg.Client('postgres://postgres@127.0.0.1:5432/test');
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    });
    const db = await openDb(`postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D${schema}`);
    cleanups.push(() => db.close());
    const run = () =>
      fetch({
        connector: source(server, 25),
        db,
        mode: { kind: 'incremental' },
        output: { kind: 'file', path: join(dir, 'pg.ndjson') },
        rejectsPath: join(dir, 'r'),
      });
    const first = await run();
    expect(first).toMatchObject({ status: 'completed', records: 60 });
    const row = await db.query<{ value: string }>('SELECT value FROM checkpoints WHERE name = ?', [
      'fetch:crm',
    ]);
    expect(JSON.parse(row[0]?.value ?? '{}')).toMatchObject({ highWater: first.checkpoint.after, run: null });
    const second = await run();
    expect(second.checkpoint.before).toBe(first.checkpoint.after);
    expect(second.records).toBeLessThanOrEqual(1);
  });

  it('never reports records a failed run did not make durable', async () => {
    const server = await crm({ token: 'other-token' });
    const dir = tempDir();
    const summary = await fetch({
      connector: source(server),
      db: await sqlite(dir),
      mode: { kind: 'incremental' },
      output: { kind: 'file', path: join(dir, 'none.ndjson') },
      rejectsPath: join(dir, 'r'),
    });
    expect(summary).toMatchObject({
      status: 'failed',
      pages: 0,
      records: 0,
      checkpoint: { before: null, after: null },
    });
    expect(summary.error).toMatchObject({ code: 'E_SOURCE_PERMANENT', retryable: false, exitCode: 1 });
    expect(readNdjson(join(dir, 'none.ndjson'))).toEqual([] as Envelope[]);
  });
});
