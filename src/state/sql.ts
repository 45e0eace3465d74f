import type { Db } from './db.js';

/** Rows per `IN (…)` list and multi-row statement: well under SQLite's and PostgreSQL's parameter limits. */
export const IN_CHUNK = 500;

export function chunks<T>(items: T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** PostgreSQL returns BIGINT columns as strings. */
export function num(value: number | string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}

export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Our own signal that a transaction lost an insert race and must run again. */
export const CONCURRENT_INSERT = 'SYNCCTL_CONCURRENT_INSERT';
const RETRYABLE = new Set(['40P01', '40001', CONCURRENT_INSERT]);

/** Runs a transaction, retrying PostgreSQL deadlocks and serialization failures between instances. */
export async function retryingTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== undefined && RETRYABLE.has(code) && attempt < 8) {
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50));
        continue;
      }
      throw err;
    }
  }
}
