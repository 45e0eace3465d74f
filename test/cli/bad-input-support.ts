/** The shape of one bad-input case and the helpers the case tables share. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { writeNdjson } from '../helpers/envelopes.js';
import { testBrokers } from '../helpers/kafka.js';

/** Shared by every case of one test file: a scratch directory and a topic for publish cases. */
export interface Ctx {
  dir: string;
  topic: string;
}

export interface BadInputCase {
  /** Where the input came from, for the README table. */
  area:
    'NDJSON file' | 'CRM page' | 'SOAP response' | 'Kafka message' | 'flag / env' | 'state path' | 'service';
  /** The bad input, as an operator would describe it. */
  input: string;
  /** What syncctl does with it (README wording). */
  does: string;
  exit: number;
  /** The message must name what and where: every pattern must match stderr. */
  says: (RegExp | ((ctx: Ctx) => RegExp))[];
  run: (ctx: Ctx) => Promise<CliRun>;
  /** Where the record was kept (reject file, dead-letter topic), or what was published. */
  kept?: (ctx: Ctx, run: CliRun) => void | Promise<void>;
  /** A longer time bound than the default, for cases that wait on a network by design. */
  boundMs?: number;
}

export const DEFAULT_BOUND_MS = 20_000;

let n = 0;
export function file(ctx: Ctx, name: string): string {
  n += 1;
  return join(ctx.dir, `${n}-${name}`);
}

/** `publish --json` of the given NDJSON lines (or raw bytes) into the shared topic. */
export async function publishLines(
  ctx: Ctx,
  name: string,
  lines: Parameters<typeof writeNdjson>[1] | Buffer,
  extra: string[] = [],
): Promise<CliRun & { input: string; rejects: string }> {
  const input = file(ctx, `${name}.ndjson`);
  if (Buffer.isBuffer(lines)) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(input, lines);
  } else writeNdjson(input, lines);
  const rejects = `${input}.rejects`;
  const run = await runSyncctl(
    [
      '--json',
      '-b',
      testBrokers(),
      'publish',
      '--topic',
      ctx.topic,
      '--in',
      input,
      '--rejects',
      rejects,
      ...extra,
    ],
    { timeoutMs: DEFAULT_BOUND_MS * 2 },
  );
  return { ...run, input, rejects };
}

export interface RejectLine {
  line?: number;
  reason: string;
  raw?: string;
  [k: string]: unknown;
}

export function readRejects(path: string): RejectLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RejectLine);
}

/** The --json summary, wherever on stdout it sits. */
export function summary(run: CliRun): Record<string, unknown> {
  const text = run.stdout;
  return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Record<string, unknown>;
}

/** publish: `records` published, and these line numbers in the reject file with reasons matching. */
export function expectPublished(
  run: CliRun & { rejects: string },
  records: number,
  rejected: [line: number, reason: RegExp][] = [],
): void {
  expect(summary(run)).toMatchObject({ records, rejects: rejected.length });
  const lines = readRejects(run.rejects);
  expect(lines.map((l) => l.line)).toEqual(rejected.map(([line]) => line));
  rejected.forEach(([, reason], i) => expect(lines[i]!.reason).toMatch(reason));
}

/** A command run with a private environment plus these variables, bounded in time. */
export function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
  input?: string,
): Promise<CliRun> {
  return runSyncctl(args, { env: isolatedEnv(env), timeoutMs: DEFAULT_BOUND_MS * 2, input });
}
