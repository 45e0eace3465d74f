import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/state/db.js';
import { Runs } from '../../src/state/runs.js';
import { createPgSchema, type PgSchema } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const schemas: PgSchema[] = [];
afterAll(async () => {
  for (const schema of schemas) await schema.drop();
});

const stores: [string, () => Promise<Db>][] = [
  ['SQLite', () => openDb(join(tempDir('syncctl-runs-'), 'state.db'))],
  [
    'PostgreSQL',
    async () => {
      const schema = await createPgSchema('syncctl_runs');
      schemas.push(schema);
      return openDb(schema.url);
    },
  ],
];

describe.each(stores)('run history on %s', (_name, open) => {
  it('records runs, lists the latest first and knows the last success of a job', async () => {
    const db = await open();
    try {
      const runs = await Runs.open(db);
      const step = {
        name: 'fetch:crm',
        outcome: 'ok' as const,
        exitCode: 0,
        durationMs: 5,
        counts: { fetched: 3 },
        error: null,
      };
      await runs.start('r1', 'nightly', new Date('2026-01-01T00:00:00Z'));
      await runs.finish(
        'r1',
        { outcome: 'partial', exitCode: 3, error: null, steps: [step] },
        new Date('2026-01-01T00:01:00Z'),
      );
      await runs.start('r2', 'nightly', new Date('2026-01-02T00:00:00Z'));
      await runs.finish(
        'r2',
        { outcome: 'failed', exitCode: 75, error: 'consume: Analytics unavailable', steps: [step] },
        new Date('2026-01-02T00:01:00Z'),
      );
      await runs.start('r3', 'other', new Date('2026-01-03T00:00:00Z'));

      const all = await runs.recent(10);
      expect(all.map((r) => [r.id, r.outcome, r.exitCode])).toEqual([
        ['r3', 'running', null],
        ['r2', 'failed', 75],
        ['r1', 'partial', 3],
      ]);
      expect(all[1]).toMatchObject({
        error: 'consume: Analytics unavailable',
        steps: [step],
        endedAt: '2026-01-02T00:01:00.000Z',
      });
      expect((await runs.recent(1, 'nightly')).map((r) => r.id)).toEqual(['r2']);
      expect((await runs.lastSuccess('nightly'))?.toISOString()).toBe('2026-01-01T00:01:00.000Z');
      expect(await runs.lastSuccess('other')).toBeNull();
    } finally {
      await db.close();
    }
  });
});
