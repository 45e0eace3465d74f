/**
 * The bad-input catalogue (SPEC "Bad input"): every case runs the built CLI and must exit with the
 * documented code, name what and where, keep the record (reject file / dead-letter topic), never
 * crash and never hang. The README's "Bad input" table is this table.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTopic, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';
import { FILE_CASES } from './bad-input-files.js';
import { closers, SERVICE_CASES } from './bad-input-services.js';
import { DEFAULT_BOUND_MS, type BadInputCase, type Ctx } from './bad-input-support.js';

export const CASES: BadInputCase[] = [...FILE_CASES, ...SERVICE_CASES];

const CRASH = /TypeError|ReferenceError|RangeError|Unhandled|\n\s+at .+:\d+:\d+\)?\n|E_INTERNAL/;

const ctx: Ctx = { dir: '', topic: '' };
beforeAll(async () => {
  ctx.dir = tempDir('syncctl-bad-input-');
  ctx.topic = uniqueName('bad-input');
  await createTopic(ctx.topic, 1);
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
});

it('catalogues at least 60 cases', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(60);
  // BAD_INPUT_TABLE=README-table.md writes the README's "Bad input" table from this very list.
  if (process.env.BAD_INPUT_TABLE) {
    const rows = CASES.map(
      (c) => `| ${c.area} | ${c.input.replaceAll('|', '\\|')} | ${c.does} | ${c.exit} |`,
    );
    const table = ['| where | input | what syncctl does | exit |', '|---|---|---|---|', ...rows].join('\n');
    writeFileSync(process.env.BAD_INPUT_TABLE, `${table}\n`);
  }
});

describe.each([
  'NDJSON file',
  'CRM page',
  'SOAP response',
  'Kafka message',
  'flag / env',
  'state path',
  'service',
])('%s', (area) => {
  const cases = CASES.filter((c) => c.area === area);
  it.each(cases.map((c) => [c.input, c] as const))('%s', async (_name, c) => {
    const run = await c.run(ctx);
    if (process.env.BAD_INPUT_DUMP)
      appendFileSync(
        process.env.BAD_INPUT_DUMP,
        `${JSON.stringify({ input: c.input, code: run.code, signal: run.signal, ms: run.durationMs, stderr: run.stderr.slice(0, 600) })}\n`,
      );
    const bound = c.boundMs ?? DEFAULT_BOUND_MS;
    expect(run.signal, `killed after ${run.durationMs} ms: ${run.stderr}`).toBeNull();
    expect(run.durationMs, 'time bound').toBeLessThan(bound);
    expect(run.stderr).not.toMatch(CRASH);
    expect(run.code, run.stderr).toBe(c.exit);
    for (const say of c.says) expect(run.stderr).toMatch(typeof say === 'function' ? say(ctx) : say);
    await c.kept?.(ctx, run);
  });
});
