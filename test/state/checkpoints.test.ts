import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/state/db.js';
import { Checkpoints } from '../../src/state/checkpoints.js';
import { createPgSchema, type PgSchema } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const schemas: PgSchema[] = [];
afterAll(async () => {
  for (const schema of schemas) await schema.drop();
});

const stores: [string, () => Promise<Db>][] = [
  ['SQLite', () => openDb(join(tempDir('syncctl-checkpoints-'), 'state.db'))],
  [
    'PostgreSQL',
    async () => {
      const schema = await createPgSchema('syncctl_ckpt');
      schemas.push(schema);
      return openDb(schema.url);
    },
  ],
];

describe.each(stores)('Checkpoints on %s', (_name, open) => {
  it('stores, overwrites, lists by prefix and deletes JSON values', async () => {
    const db = await open();
    try {
      const checkpoints = await Checkpoints.open(db);
      expect(await checkpoints.get('crm')).toBeUndefined();
      await checkpoints.set('crm', { until: '2026-01-01T00:00:00Z', ids: ['a'] });
      await checkpoints.set('crm', { until: '2026-01-02T00:00:00Z', ids: ['b'] });
      await checkpoints.set('crm:window:1', { done: true });
      await checkpoints.set('inventory', 3);
      expect(await checkpoints.get('crm')).toEqual({ until: '2026-01-02T00:00:00Z', ids: ['b'] });
      const listed = await checkpoints.list('crm');
      expect(listed.map((c) => c.name)).toEqual(['crm', 'crm:window:1']);
      expect(Number.isNaN(Date.parse(listed[0]!.updatedAt))).toBe(false);
      expect(await checkpoints.delete('crm:window')).toBe(1);
      expect(await checkpoints.get('crm:window:1')).toBeUndefined();
      expect(await checkpoints.get('inventory')).toBe(3);
    } finally {
      await db.close();
    }
  });

  it('keeps values across reopening the store', async () => {
    const db = await open();
    await (await Checkpoints.open(db)).set('x', { n: 1 });
    const again = await Checkpoints.open(db);
    expect(await again.get('x')).toEqual({ n: 1 });
    await db.close();
  });
});
