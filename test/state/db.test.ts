import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../src/state/db.js';
import { createPgSchema, PG_BASE_URL, type PgSchema } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

let schema: PgSchema | undefined;
afterAll(async () => {
  await schema?.drop();
});

describe('PostgreSQL state store', () => {
  it('survives the server dropping its idle connections and reconnects on the next query', async () => {
    schema = await createPgSchema('syncctl_db');
    const app = `syncctl-db-test-${process.pid}`;
    const db = await openDb(`${schema.url}&application_name=${app}`);
    const unhandled: unknown[] = [];
    const onUncaught = (err: unknown): void => void unhandled.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await db.query('SELECT 1');
      const admin = new pg.Client({ connectionString: PG_BASE_URL });
      await admin.connect();
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      await admin.end();
      expect(killed.rowCount).toBeGreaterThan(0);
      // The idle client's 'error' arrives asynchronously; give it time to be (mis)handled.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const rows = await db.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]?.one).toBe(1);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await db.close();
    }
  });
});

describe('SQLite state file', () => {
  it('is created owner-only (0600, WAL file too) in a directory created 0700', async () => {
    const dir = join(tempDir('syncctl-db-mode-'), 'nested', 'state');
    const path = join(dir, 'state.db');
    const db = await openDb(path);
    try {
      await db.exec('CREATE TABLE t (x INTEGER)');
      await db.exec('INSERT INTO t VALUES (1)');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    } finally {
      await db.close();
    }
  });
});

describe('a SQLite store whose device is full', () => {
  it('fails the transaction with E_STATE naming the file, not a rollback error, and stays usable', async () => {
    const path = join(tempDir('syncctl-db-full-'), 'state.db');
    const db = await openDb(path);
    try {
      await db.exec('CREATE TABLE t (x TEXT)');
      // A page cap makes SQLite answer SQLITE_FULL exactly as a full disk does.
      const [{ page_count: pages }] = await db.query<{ page_count: number }>('PRAGMA page_count');
      await db.exec(`PRAGMA max_page_count = ${pages + 2}`);
      const big = 'x'.repeat(64 * 1024);
      const failed = await db
        .transaction(async (tx) => {
          for (let i = 0; i < 10; i++) await tx.run('INSERT INTO t VALUES (?)', [big]);
        })
        .catch((err: unknown) => err);
      expect(failed).toMatchObject({
        code: 'E_STATE',
        exitCode: 1,
        message: expect.stringMatching(/SQLite state store .*state\.db is full: no space left .*SQLITE_FULL/),
        hint: expect.stringMatching(/free space on the device holding .*then rerun/),
      });
      await db.exec('PRAGMA max_page_count = 1000000');
      await db.transaction(async (tx) => void (await tx.run('INSERT INTO t VALUES (?)', ['ok'])));
      expect(await db.query('SELECT x FROM t')).toEqual([{ x: 'ok' }]);
    } finally {
      await db.close();
    }
  });
});

describe('a --state URL of another database', () => {
  it('is refused with a config error instead of becoming a SQLite file under ./mysql:/', async () => {
    const cwd = process.cwd();
    await expect(openDb('mysql://user:hunter2@db.example/sync')).rejects.toMatchObject({
      code: 'E_CONFIG',
      message: expect.stringMatching(/unsupported state store scheme "mysql:"/),
    });
    await expect(openDb('mysql://user:hunter2@db.example/sync')).rejects.not.toThrow(/hunter2/);
    expect(existsSync(`${cwd}/mysql:`)).toBe(false);
  });
});
