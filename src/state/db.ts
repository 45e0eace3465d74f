import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { ConfigError, StateError, StateUnavailableError, type SyncError } from '../errors.js';
import { flagsAndEnv, GLOBAL_SETTINGS } from '../settings/index.js';
import {
  defaultStateDir,
  describeFsError,
  ensureDir,
  OWNER_ONLY_DIR,
  OWNER_ONLY_FILE,
  statOrUndefined,
} from '../paths.js';

export type SqlValue = string | number | bigint | null | Buffer;
export type Row = Record<string, unknown>;

/**
 * The smallest SQL surface the state store needs, the same over embedded SQLite and PostgreSQL.
 * Statements use `?` placeholders and portable SQL (TEXT, INTEGER, BIGINT, ON CONFLICT … DO UPDATE).
 */
export interface Db {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the state lives, with any password removed. */
  readonly location: string;
  query<T extends Row = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }>;
  /** Runs fn atomically; the Db passed to fn is the transaction's. */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  /** Serialises a critical section across every process sharing this store (advisory lock / exclusive tx). */
  exec(sql: string): Promise<void>;
  /**
   * A Db on one connection of its own until release(): for session state such as a PostgreSQL
   * advisory lock, which lives and dies with the connection. SQLite has one connection: itself.
   */
  dedicated(): Promise<DedicatedDb>;
  close(): Promise<void>;
}

export interface DedicatedDb extends Db {
  release(): Promise<void>;
}

function toPg(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

class SqliteDb implements Db {
  readonly kind = 'sqlite' as const;
  private depth = 0;
  // Preparing is a measurable share of consume's CPU (bench/README.md); the SQL texts are few and fixed.
  private readonly statements = new Map<string, Database.Statement>();
  constructor(
    private readonly db: Database.Database,
    readonly location: string,
  ) {}

  private prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      if (this.statements.size >= 500) this.statements.clear();
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs one SQLite call, telling a full device in words an operator acts on. */
  private guard<T>(call: () => T): T {
    try {
      return call();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_FULL') throw err;
      throw new StateError(
        `the SQLite state store ${this.location} is full: no space left on its device (SQLITE_FULL)`,
        {
          cause: err,
          hint: `free space on the device holding ${dirname(this.location)} (or point --state elsewhere), then rerun: it continues from the last committed step`,
        },
      );
    }
  }

  async query<T extends Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.guard(() => this.prepare(sql).all(...params) as T[]);
  }

  async run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    const info = this.guard(() => this.prepare(sql).run(...params));
    return { changes: info.changes };
  }

  async exec(sql: string): Promise<void> {
    this.guard(() => this.db.exec(sql));
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    // better-sqlite3's own transaction() cannot span awaits; IMMEDIATE takes the write lock up front.
    if (this.depth > 0) return fn(this);
    this.guard(() => this.db.exec('BEGIN IMMEDIATE'));
    this.depth++;
    try {
      const result = await fn(this);
      this.guard(() => this.db.exec('COMMIT'));
      return result;
    } catch (err) {
      // SQLite has already rolled back after some failures (a full disk among them); a ROLLBACK
      // then fails with "no transaction is active" and would hide the failure that matters.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // err says why the transaction failed; a failed rollback adds nothing an operator can use.
        }
      }
      throw err;
    } finally {
      this.depth--;
    }
  }

  async dedicated(): Promise<DedicatedDb> {
    return {
      kind: this.kind,
      location: this.location,
      query: (sql, params) => this.query(sql, params),
      run: (sql, params) => this.run(sql, params),
      transaction: (fn) => this.transaction(fn),
      exec: (sql) => this.exec(sql),
      dedicated: () => this.dedicated(),
      // The store itself stays open: its owner closes it.
      close: async () => {},
      release: async () => {},
    };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

type Queryable = pg.Pool | pg.PoolClient;

class PostgresDb implements Db {
  readonly kind = 'postgres' as const;
  constructor(
    private readonly pool: pg.Pool,
    private readonly client: Queryable,
    readonly location: string,
    private readonly inTransaction = false,
  ) {}

  async query<T extends Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    const result = await this.client.query(toPg(sql), params);
    return result.rows as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    const result = await this.client.query(toPg(sql), params);
    return { changes: result.rowCount ?? 0 };
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresDb(this.pool, client, this.location, true));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async dedicated(): Promise<DedicatedDb> {
    const client = await this.pool.connect();
    // A checked-out client's errors go to the client, not the pool: unheard they would crash the
    // process. The next query on it fails and is reported where it is made.
    client.on('error', () => {});
    let released = false;
    return Object.assign(new PostgresDb(this.pool, client, this.location, false), {
      release: async () => {
        if (released) return;
        released = true;
        // Destroying instead of returning it ends the session, so nothing it held outlives the holder.
        client.release(true);
      },
      close: async () => {},
    });
  }

  async close(): Promise<void> {
    if (!this.inTransaction) await this.pool.end();
  }
}

export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

export function defaultStatePath(): string {
  return join(defaultStateDir(), 'state.db');
}

/** How long a PostgreSQL connection may take: a host that drops packets must fail, not hang. */
export const PG_CONNECT_TIMEOUT_MS = 10_000;

/** Where a postgres:// URL points, as host:port (never its credentials). */
function pgAddress(location: string): string {
  try {
    const url = new URL(location);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}`;
  } catch {
    return redactUrl(location);
  }
}

// Network failures and "not now" answers (starting up, too many clients): a later run may succeed.
const PG_TRANSIENT_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);
const PG_TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
// Settings that cannot work until someone changes them: unknown database, role, password, host.
const PG_CONFIG_SQLSTATES = new Set(['3D000', '28000', '28P01']);

function postgresOpenError(location: string, err: unknown): SyncError {
  const where = `the PostgreSQL state store at ${pgAddress(location)} (--state ${redactUrl(location)})`;
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message;
  const options = { cause: err };
  if (
    typeof code === 'string' &&
    (PG_TRANSIENT_ERRNOS.has(code) || PG_TRANSIENT_SQLSTATES.has(code) || code.startsWith('08'))
  ) {
    return new StateUnavailableError(`cannot reach ${where}: ${message}`, {
      ...options,
      hint: 'check that PostgreSQL is running and reachable; rerun later (nothing was read or written)',
    });
  }
  // pg reports its connect timeout and a dropped connection without an errno.
  if (code === undefined && /timeout|terminated/i.test(message)) {
    const what = /timeout/i.test(message)
      ? `no answer within ${PG_CONNECT_TIMEOUT_MS / 1000} s (${message})`
      : message;
    return new StateUnavailableError(`cannot reach ${where}: ${what}`, {
      ...options,
      hint: 'check that PostgreSQL is running and reachable; rerun later',
    });
  }
  if (code === 'ENOTFOUND' || (typeof code === 'string' && PG_CONFIG_SQLSTATES.has(code))) {
    return new ConfigError(`cannot open ${where}: ${message}`, {
      ...options,
      hint: `check the host, database name and credentials in ${flagsAndEnv(GLOBAL_SETTINGS, 'state')}`,
    });
  }
  return new StateError(`cannot open ${where}: ${message}`, options);
}

async function openPostgres(location: string): Promise<Db> {
  // Loaded on first use: most runs keep their state in SQLite.
  const { default: pgModule } = await import('pg');
  const pool = new pgModule.Pool({
    connectionString: location,
    max: 4,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
  });
  // An idle pooled connection that the server drops (restart, idle timeout, pg_terminate_backend)
  // emits 'error' on the pool; unheard, it would crash the process. The pool discards that client
  // and the next query opens a new connection or fails with a StateError where it is reported.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw postgresOpenError(location, err);
  }
  return new PostgresDb(pool, pool, redactUrl(location));
}

const SQLITE_HINT =
  'point --state (or SYNCCTL_STATE) at a SQLite file in a writable directory, or a postgres:// URL';

/**
 * Checks the path the way an operator would before SQLite sees it: SQLite itself says only "unable to
 * open database file" for a directory, a read-only place or a missing parent.
 */
function prepareSqlitePath(location: string): void {
  const dir = dirname(location);
  ensureDir(dir, `--state ${location}`, OWNER_ONLY_DIR);
  let stats;
  try {
    stats = statOrUndefined(location);
  } catch (err) {
    throw new ConfigError(`cannot use --state ${location}: ${describeFsError(err)}`, {
      cause: err,
      hint: SQLITE_HINT,
    });
  }
  if (stats?.isDirectory()) {
    throw new ConfigError(`--state ${location} is a directory, not a SQLite database file`, {
      hint: SQLITE_HINT,
    });
  }
  try {
    // An empty file is a valid new database, so creating it here changes nothing for SQLite — except
    // that it is created owner-only (SQLite gives its -wal and -shm files the database's mode).
    if (!stats) closeSync(openSync(location, 'wx', OWNER_ONLY_FILE));
    else accessSync(location, constants.R_OK | constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ConfigError(
        `cannot ${stats ? 'write' : 'create'} the SQLite state store --state ${location}: ${describeFsError(err)}`,
        { cause: err, hint: SQLITE_HINT },
      );
    }
  }
  try {
    // WAL mode keeps -wal and -shm files next to the database: the directory must be writable too.
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new ConfigError(
      `the directory ${dir} of the SQLite state store (--state ${location}) is not writable: ${describeFsError(err)}`,
      { cause: err, hint: SQLITE_HINT },
    );
  }
}

// SQLite result codes that mean the path itself is wrong, not that the store is broken or busy.
const SQLITE_PATH_CODES = new Set(['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM']);

function openSqlite(location: string): Db {
  if (location !== ':memory:') prepareSqlitePath(location);
  let db: Database.Database | undefined;
  try {
    db = new Database(location);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 10000');
    return new SqliteDb(db, location);
  } catch (err) {
    db?.close();
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_NOTADB') {
      throw new ConfigError(`--state ${location} is not a SQLite database (${(err as Error).message})`, {
        cause: err,
        hint: SQLITE_HINT,
      });
    }
    if (typeof code === 'string' && SQLITE_PATH_CODES.has(code)) {
      throw new ConfigError(
        `cannot open the SQLite state store --state ${location}: ${(err as Error).message}`,
        {
          cause: err,
          hint: SQLITE_HINT,
        },
      );
    }
    throw new StateError(`cannot open the SQLite state store ${location}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/** Whether `location` names a SQLite file (not PostgreSQL, not an in-memory database). */
export function isSqliteFile(location: string): boolean {
  return !isPostgresUrl(location) && location !== ':memory:' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(location);
}

/** Opens the state store: a postgres:// URL selects PostgreSQL, anything else is a SQLite file path. */
export async function openDb(location: string = defaultStatePath()): Promise<Db> {
  if (isPostgresUrl(location)) return openPostgres(location);
  // Otherwise "mysql://host/db" would silently become a SQLite file under ./mysql:/host/.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location);
  if (scheme)
    throw new ConfigError(`--state ${redactUrl(location)}: unsupported state store scheme "${scheme[1]}:"`, {
      hint: SQLITE_HINT,
    });
  return openSqlite(location);
}

/**
 * Applies each module's CREATE statements once. Modules own their tables; names are prefixed by module.
 * PostgreSQL DDL races between instances are serialised with an advisory lock.
 */
export async function migrate(db: Db, statements: string[]): Promise<void> {
  if (db.kind === 'postgres') {
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(7351001)');
      for (const sql of statements) await tx.exec(sql);
    });
    return;
  }
  for (const sql of statements) await db.exec(sql);
}
