import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { testBrokers } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

// Each of these used to hang, fail late (after work was done) or with a bare errno; all must be quick.
const BOUND_MS = 10_000;

let dir: string;
let aDirectory: string;
beforeAll(() => {
  dir = tempDir('syncctl-paths-');
  aDirectory = join(dir, 'a-directory');
  mkdirSync(aDirectory);
});

function expectDone(run: CliRun, code: number): void {
  expect(run.signal, `killed after ${run.durationMs} ms: ${run.stderr}`).toBeNull();
  expect(run.code, run.stderr).toBe(code);
}

/** A fetch whose CRM refuses connections: any check must happen before the first request. */
function fetchCrm(args: string[]): Promise<CliRun> {
  return runSyncctl(['fetch', '--source', 'crm', '--full', '--crm-retries', '0', ...args], {
    env: isolatedEnv({ SYNCCTL_CRM_URL: 'http://127.0.0.1:1', SYNCCTL_CRM_TOKEN: 'token' }),
    timeoutMs: BOUND_MS,
  });
}

describe('file flags given a directory', () => {
  it('publish --in <directory> names the path', async () => {
    const run = await runSyncctl(
      ['-b', testBrokers(), 'publish', '--topic', 'customer_data', '--in', aDirectory, '--dry-run'],
      {
        timeoutMs: BOUND_MS,
      },
    );
    expectDone(run, 1);
    expect(run.stderr).toContain(`--in ${aDirectory} is a directory, not a file`);
  });

  it('publish --rejects <directory> names the path before publishing anything', async () => {
    const input = join(dir, 'one-bad-line.ndjson');
    writeNdjson(input, sampleEnvelopes(3, 1));
    writeFileSync(input, 'not json\n', { flag: 'a' });
    const run = await runSyncctl(
      [
        '-b',
        testBrokers(),
        'publish',
        '--topic',
        'customer_data',
        '--in',
        input,
        '--rejects',
        aDirectory,
        '--dry-run',
      ],
      { timeoutMs: BOUND_MS },
    );
    expectDone(run, 1);
    expect(run.stderr).toContain(`--rejects ${aDirectory} is a directory, not a file`);
  });

  it('publish --rejects in a missing directory reports it instead of crashing at the first reject', async () => {
    const input = join(dir, 'bad-line.ndjson');
    writeFileSync(input, 'not json\n');
    const rejects = join(dir, 'no-such-dir', 'rejects.ndjson');
    const run = await runSyncctl(
      [
        '-b',
        testBrokers(),
        'publish',
        '--topic',
        'customer_data',
        '--in',
        input,
        '--rejects',
        rejects,
        '--dry-run',
      ],
      { timeoutMs: BOUND_MS },
    );
    expectDone(run, 1);
    expect(run.stderr).toContain(`cannot write the reject file ${rejects}`);
    expect(run.stderr).not.toContain('Unhandled');
  });

  it('fetch --out <directory> names the path', async () => {
    const run = await fetchCrm(['--out', aDirectory]);
    expectDone(run, 1);
    expect(run.stderr).toContain(`--out ${aDirectory} is a directory, not a file`);
  });

  it('fetch --rejects <directory> names the path before fetching anything', async () => {
    const run = await fetchCrm(['--out', join(dir, 'out.ndjson'), '--rejects', aDirectory]);
    expectDone(run, 1);
    expect(run.stderr).toContain(`--rejects ${aDirectory} is a directory, not a file`);
    expect(run.stderr).not.toContain('127.0.0.1:1');
  });
});

describe('sandbox --dir that cannot be created', () => {
  it('under /proc exits 2 instead of hanging in mkdir', async () => {
    const run = await runSyncctl(['sandbox', 'up', '--dir', '/proc/syncctl-sandbox/sandbox'], {
      timeoutMs: BOUND_MS,
    });
    expectDone(run, 2);
    expect(run.stderr).toContain('/proc/syncctl-sandbox');
  });

  it('below a file says the file is in the way', async () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const run = await runSyncctl(['sandbox', 'up', '--dir', join(file, 'sandbox')], { timeoutMs: BOUND_MS });
    expectDone(run, 2);
    expect(run.stderr).toContain(`${file} is a file, not a directory`);
  });
});

describe('sandbox --dir holding other files', () => {
  it('is refused, not emptied', async () => {
    const precious = join(dir, 'home-like');
    mkdirSync(join(precious, 'projects'), { recursive: true });
    writeFileSync(join(precious, 'notes.txt'), 'keep me');
    const run = await runSyncctl(['sandbox', 'up', '--dir', precious], { timeoutMs: BOUND_MS });
    expectDone(run, 2);
    expect(run.stderr).toContain(`${precious} is not empty and is not a sandbox directory`);
    expect(readFileSync(join(precious, 'notes.txt'), 'utf8')).toBe('keep me');
    expect(existsSync(join(precious, 'projects'))).toBe(true);
  });
});
