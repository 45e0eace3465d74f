import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL every test run uses (trust auth); CI provides the same. */
export const PG_BASE_URL = process.env.SYNCCTL_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PgSchema {
  name: string;
  /** A connection URL whose search_path is the private schema, so tables never collide between tests. */
  url: string;
  drop(): Promise<void>;
}

/** Creates a private schema for one test; `drop()` removes it with everything in it. */
export async function createPgSchema(prefix = 'syncctl_test'): Promise<PgSchema> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${name}`);
  } finally {
    await client.end();
  }
  const separator = PG_BASE_URL.includes('?') ? '&' : '?';
  return {
    name,
    url: `${PG_BASE_URL}${separator}options=-csearch_path%3D${name}`,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_BASE_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
