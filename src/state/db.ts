import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { StateError } from '../errors.js';
import { defaultStateDir } from '../paths.js';

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
  close(): Promise<void>;
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

  async query<T extends Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.prepare(sql).all(...params) as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    const info = this.prepare(sql).run(...params);
    return { changes: info.changes };
  }

  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    // better-sqlite3's own transaction() cannot span awaits; IMMEDIATE takes the write lock up front.
    if (this.depth > 0) return fn(this);
    this.db.exec('BEGIN IMMEDIATE');
    this.depth++;
    try {
      const result = await fn(this);
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.depth--;
    }
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

/** Opens the state store: a postgres:// URL selects PostgreSQL, anything else is a SQLite file path. */
export async function openDb(location: string = defaultStatePath()): Promise<Db> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    const pool = new pg.Pool({ connectionString: location, max: 4, connectionTimeoutMillis: 10_000 });
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw new StateError(
        `cannot open the PostgreSQL state store ${redactUrl(location)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return new PostgresDb(pool, pool, redactUrl(location));
  }
  try {
    if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
    const db = new Database(location);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 10000');
    return new SqliteDb(db, location);
  } catch (err) {
    throw new StateError(`cannot open the SQLite state store ${location}: ${(err as Error).message}`, {
      cause: err,
    });
  }
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
