/**
 * Named locks in the state store, so two runs of the same job (or two `fetch --source crm`) never
 * overlap — across machines too when the store is PostgreSQL.
 *
 * - PostgreSQL: a session advisory lock on a connection of its own, held for the run. The server
 *   frees it when that session ends, however the holder died. A row beside it says who holds it.
 * - SQLite: the row is the lock. Its holder refreshes `heartbeat`; a row whose heartbeat is older
 *   than the stale limit, or whose pid is gone on this host, is taken over (and the takeover logged).
 */
import { hostname } from 'node:os';
import { LockedError, StateError } from '../errors.js';
import type { Logger } from '../log.js';
import { migrate, type Db, type DedicatedDb } from './db.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS locks (
     name TEXT PRIMARY KEY,
     run_id TEXT NOT NULL,
     host TEXT NOT NULL,
     pid INTEGER NOT NULL,
     since TEXT NOT NULL,
     heartbeat TEXT NOT NULL
   )`,
];

export const HEARTBEAT_MS = 10_000;
export const STALE_MS = 60_000;

export interface LockHolder {
  name: string;
  runId: string;
  host: string;
  pid: number;
  since: string;
  heartbeat: string;
}

export interface HeldLock {
  readonly name: string;
  readonly runId: string;
  /** Frees the lock (only if this run still holds it); safe to call twice. */
  release(): Promise<void>;
}

export interface LockOptions {
  runId: string;
  logger?: Logger;
  heartbeatMs?: number;
  staleMs?: number;
  /** For tests: who this process claims to be. */
  host?: string;
  pid?: number;
}

interface LockRow {
  name: string;
  run_id: string;
  host: string;
  pid: number | string;
  since: string;
  heartbeat: string;
}

function toHolder(row: LockRow): LockHolder {
  return {
    name: row.name,
    runId: row.run_id,
    host: row.host,
    pid: Number(row.pid),
    since: row.since,
    heartbeat: row.heartbeat,
  };
}

function lockedError(name: string, holder: LockHolder | undefined): LockedError {
  const who = holder
    ? `run ${holder.runId} (pid ${holder.pid} on ${holder.host}) since ${holder.since}`
    : 'another run';
  return new LockedError(`lock ${name} is held by ${who}`, {
    hint: 'wait for that run to finish; a lock whose holder died is taken over by the next run',
    details: { lock: name, ...(holder ? { holder } : {}) },
  });
}

/** Whether a process with this pid exists here (EPERM: it exists but is someone else's). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a holder no longer counts, or undefined while it does. */
function staleReason(holder: LockHolder, host: string, staleMs: number, now: number): string | undefined {
  const age = now - Date.parse(holder.heartbeat);
  if (!(age <= staleMs)) return `its last heartbeat was ${Math.round(age / 1000)} s ago`;
  if (holder.host === host && !pidAlive(holder.pid)) return `pid ${holder.pid} is gone`;
  return undefined;
}

async function readHolder(db: Db, name: string): Promise<LockHolder | undefined> {
  const rows = await db.query<LockRow & Record<string, unknown>>('SELECT * FROM locks WHERE name = ?', [
    name,
  ]);
  return rows[0] ? toHolder(rows[0]) : undefined;
}

async function writeRow(db: Db, holder: LockHolder): Promise<void> {
  await db.run(
    `INSERT INTO locks (name, run_id, host, pid, since, heartbeat) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id, host = excluded.host, pid = excluded.pid,
       since = excluded.since, heartbeat = excluded.heartbeat`,
    [holder.name, holder.runId, holder.host, holder.pid, holder.since, holder.heartbeat],
  );
}

// The key also covers the schema, so stores sharing one database in different schemas do not collide.
const PG_KEY = `hashtextextended(?::text || ':' || current_schema(), 0)`;

async function acquirePostgres(db: Db, name: string, me: LockHolder, logger?: Logger): Promise<HeldLock> {
  const session: DedicatedDb = await db.dedicated();
  let got: boolean;
  try {
    const rows = await session.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${PG_KEY}) AS ok`, [name]);
    got = rows[0]?.ok === true;
  } catch (err) {
    await session.release();
    throw new StateError(`cannot take lock ${name}: ${(err as Error).message}`, { cause: err });
  }
  if (!got) {
    const holder = await readHolder(db, name).catch(() => undefined);
    await session.release();
    throw lockedError(name, holder && holder.runId !== me.runId ? holder : undefined);
  }
  const before = await readHolder(session, name);
  if (before) {
    // The row of a holder whose session ended: the server freed its advisory lock then, so nothing
    // is taken from anyone (unlike SQLite's takeover) — worth a debug line only.
    logger?.debug(
      `took over lock ${name} from run ${before.runId} (pid ${before.pid} on ${before.host}, since ${before.since}): its session has ended`,
    );
  }
  await writeRow(session, me);
  let released = false;
  return {
    name,
    runId: me.runId,
    release: async () => {
      if (released) return;
      released = true;
      await session.run('DELETE FROM locks WHERE name = ? AND run_id = ?', [name, me.runId]).catch(() => {});
      // Ending the session frees the advisory lock even if the unlock below cannot be sent.
      await session.query(`SELECT pg_advisory_unlock(${PG_KEY})`, [name]).catch(() => {});
      await session.release();
    },
  };
}

async function acquireSqlite(
  db: Db,
  name: string,
  me: LockHolder,
  options: { logger?: Logger; heartbeatMs: number; staleMs: number },
): Promise<HeldLock> {
  const { logger, heartbeatMs, staleMs } = options;
  const takenOver = await db.transaction(async (tx) => {
    const holder = await readHolder(tx, name);
    let reason: string | undefined;
    if (holder) {
      reason = staleReason(holder, me.host, staleMs, Date.now());
      if (reason === undefined) throw lockedError(name, holder);
    }
    await writeRow(tx, me);
    return holder && reason ? { holder, reason } : undefined;
  });
  if (takenOver) {
    const { holder, reason } = takenOver;
    logger?.warn(
      `took over stale lock ${name} from run ${holder.runId} (pid ${holder.pid} on ${holder.host}, since ${holder.since}): ${reason}`,
    );
  }
  let lost = false;
  const beat = async () => {
    try {
      const { changes } = await db.run('UPDATE locks SET heartbeat = ? WHERE name = ? AND run_id = ?', [
        new Date().toISOString(),
        name,
        me.runId,
      ]);
      if (changes === 0 && !lost) {
        lost = true;
        logger?.warn(`lock ${name} was taken over by another run (this run's heartbeat stalled)`);
      }
    } catch {
      // A busy store skips one beat; the stale limit allows several.
    }
  };
  const timer = setInterval(() => void beat(), heartbeatMs);
  timer.unref();
  let released = false;
  return {
    name,
    runId: me.runId,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await db.run('DELETE FROM locks WHERE name = ? AND run_id = ?', [name, me.runId]).catch(() => {});
    },
  };
}

/** Takes the named lock for this run, or throws LockedError (exit 4) naming who holds it. */
export async function acquireLock(db: Db, name: string, options: LockOptions): Promise<HeldLock> {
  await migrate(db, SCHEMA);
  const now = new Date().toISOString();
  const me: LockHolder = {
    name,
    runId: options.runId,
    host: options.host ?? hostname(),
    pid: options.pid ?? process.pid,
    since: now,
    heartbeat: now,
  };
  if (db.kind === 'postgres') return acquirePostgres(db, name, me, options.logger);
  return acquireSqlite(db, name, me, {
    ...(options.logger ? { logger: options.logger } : {}),
    heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS,
    staleMs: options.staleMs ?? STALE_MS,
  });
}

/** Runs fn while holding the lock; the lock is released however fn ends. */
export async function withLock<T>(
  db: Db,
  name: string,
  options: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(db, name, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * The locks held now. On PostgreSQL a row counts only while its advisory lock is held (a killed
 * holder leaves its row behind); on SQLite only while it is not stale.
 */
export async function listLocks(
  db: Db,
  options: { staleMs?: number; host?: string } = {},
): Promise<LockHolder[]> {
  await migrate(db, SCHEMA);
  const rows = (await db.query<LockRow & Record<string, unknown>>('SELECT * FROM locks ORDER BY name')).map(
    toHolder,
  );
  if (db.kind === 'postgres') {
    const held: LockHolder[] = [];
    for (const holder of rows) {
      const found = await db.query(
        `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND ((classid::bigint << 32) | objid::bigint) = ${PG_KEY}`,
        [holder.name],
      );
      if (found.length > 0) held.push(holder);
    }
    return held;
  }
  const host = options.host ?? hostname();
  const now = Date.now();
  return rows.filter((h) => staleReason(h, host, options.staleMs ?? STALE_MS, now) === undefined);
}
