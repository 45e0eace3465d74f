import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LockedError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { openDb, type Db } from '../../src/state/db.js';
import { acquireLock, listLocks } from '../../src/state/locks.js';
import { createPgSchema, type PgSchema } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const schemas: PgSchema[] = [];
afterAll(async () => {
  for (const schema of schemas) await schema.drop();
});

/** Two handles on one store, as two processes would have. */
const stores: [string, () => Promise<[Db, Db]>][] = [
  [
    'SQLite',
    async () => {
      const path = join(tempDir('syncctl-locks-'), 'state.db');
      return [await openDb(path), await openDb(path)];
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const schema = await createPgSchema('syncctl_locks');
      schemas.push(schema);
      return [await openDb(schema.url), await openDb(schema.url)];
    },
  ],
];

/** A process that exits at once: its pid is certainly gone afterwards. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}

describe.each(stores)('locks on %s', (kind, open) => {
  it('lets one holder in, names it to the second, and frees it on release', async () => {
    const [a, b] = await open();
    try {
      const first = await acquireLock(a, 'run:nightly', { runId: 'run-a' });
      const err = await acquireLock(b, 'run:nightly', { runId: 'run-b' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as LockedError).exitCode).toBe(4);
      expect((err as Error).message).toMatch(
        new RegExp(`^lock run:nightly is held by run run-a \\(pid ${process.pid} on .+\\) since \\d{4}-`),
      );
      // Other names are independent.
      const other = await acquireLock(b, 'fetch:crm', { runId: 'run-b' });
      expect((await listLocks(b)).map((h) => [h.name, h.runId])).toEqual([
        ['fetch:crm', 'run-b'],
        ['run:nightly', 'run-a'],
      ]);
      await other.release();
      await first.release();
      await first.release();
      const second = await acquireLock(b, 'run:nightly', { runId: 'run-b' });
      expect((await listLocks(a)).map((h) => h.runId)).toEqual(['run-b']);
      await second.release();
      expect(await listLocks(a)).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('takes over the lock of a holder that is gone and logs the takeover', async () => {
    const [a, b] = await open();
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    try {
      if (kind === 'PostgreSQL') {
        // A killed holder: the server ends its session, its row stays behind.
        const first = await acquireLock(a, 'run:nightly', { runId: 'run-a' });
        await b.query(
          `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(? || ':' || current_schema(), 0)`,
          ['run:nightly'],
        );
        await first.release();
        await a.close();
      } else {
        await acquireLock(a, 'run:nightly', { runId: 'run-a', pid: await deadPid() });
      }
      process.stderr.write = ((chunk: string) => {
        lines.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      const lock = await acquireLock(b, 'run:nightly', { runId: 'run-b', logger: createLogger('verbose') });
      process.stderr.write = write;
      expect(lines.join('')).toMatch(/took over (stale )?lock run:nightly from run run-a/);
      expect((await listLocks(b)).map((h) => h.runId)).toEqual(['run-b']);
      await lock.release();
    } finally {
      process.stderr.write = write;
      if (kind !== 'PostgreSQL') await a.close();
      await b.close();
    }
  });

  if (kind === 'SQLite') {
    it('takes over a lock whose heartbeat is older than the stale limit, even of a live pid', async () => {
      const [a, b] = await open();
      try {
        await acquireLock(a, 'consume:g', { runId: 'run-a', host: 'elsewhere', pid: 1 });
        await expect(acquireLock(b, 'consume:g', { runId: 'run-b' })).rejects.toThrow(/held by run run-a/);
        await new Promise((resolve) => setTimeout(resolve, 120));
        const lock = await acquireLock(b, 'consume:g', { runId: 'run-b', staleMs: 100 });
        expect((await listLocks(b)).map((h) => h.runId)).toEqual(['run-b']);
        await lock.release();
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('keeps a live lock fresh with heartbeats', async () => {
      const [a, b] = await open();
      try {
        const lock = await acquireLock(a, 'run:hb', { runId: 'run-a', heartbeatMs: 30, host: 'elsewhere' });
        await new Promise((resolve) => setTimeout(resolve, 300));
        await expect(acquireLock(b, 'run:hb', { runId: 'run-b', staleMs: 200 })).rejects.toThrow(LockedError);
        await lock.release();
      } finally {
        await a.close();
        await b.close();
      }
    });
  }
});
