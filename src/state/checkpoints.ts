import { migrate, type Db } from './db.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS checkpoints (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at TEXT NOT NULL
   )`,
];

/** Named JSON checkpoints (per source, per backfill window). Values are opaque to the store. */
export class Checkpoints {
  private constructor(private readonly db: Db) {}

  static async open(db: Db): Promise<Checkpoints> {
    await migrate(db, SCHEMA);
    return new Checkpoints(db);
  }

  async get<T>(name: string): Promise<T | undefined> {
    const rows = await this.db.query<{ value: string }>('SELECT value FROM checkpoints WHERE name = ?', [
      name,
    ]);
    return rows[0] ? (JSON.parse(rows[0].value) as T) : undefined;
  }

  async set(name: string, value: unknown): Promise<void> {
    await this.db.run(
      `INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [name, JSON.stringify(value), new Date().toISOString()],
    );
  }

  async list(prefix = ''): Promise<{ name: string; value: unknown; updatedAt: string }[]> {
    const rows = await this.db.query<{ name: string; value: string; updated_at: string }>(
      'SELECT name, value, updated_at FROM checkpoints WHERE name LIKE ? ORDER BY name',
      [`${prefix}%`],
    );
    return rows.map((r) => ({
      name: r.name,
      value: JSON.parse(r.value) as unknown,
      updatedAt: r.updated_at,
    }));
  }

  async delete(prefix: string): Promise<number> {
    const { changes } = await this.db.run('DELETE FROM checkpoints WHERE name LIKE ?', [`${prefix}%`]);
    return changes;
  }
}
