/** What every command shares: the version, a missing command, and errors under --json. */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCrmServer } from '../../fixtures/crm/server.js';
import type { FetchSummary } from '../../src/stages/fetch.js';
import { isolatedEnv, ROOT, runSyncctl } from '../helpers/cli.js';
import { tempDir } from './fetch-helpers.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface ErrorDocument {
  error: { code: string; message: string; exitCode: number; hint?: string };
}

/** The last `syncctl: error: …` line on stderr, without its prefix. */
function errorLine(stderr: string): string | undefined {
  return [...stderr.matchAll(/^syncctl: error: (.*)$/gm)].pop()?.[1];
}

describe('syncctl --version', () => {
  it("prints syncctl's own version, not the npm script's, from any directory", async () => {
    const run = await runSyncctl(['--version'], {
      env: isolatedEnv({ npm_package_version: '9.9.9' }),
      cwd: tmpdir(),
    });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(VERSION);
  });
});

describe('syncctl without a command', () => {
  it('is a usage error (exit 2) with the help on stderr, nothing on stdout', async () => {
    const run = await runSyncctl([]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Usage: syncctl /m);
  });

  it('an unknown command stays exit 2; asking for help stays exit 0', async () => {
    expect((await runSyncctl(['fecth'])).code).toBe(2);
    expect((await runSyncctl(['help'])).code).toBe(0);
  });
});

describe('errors under --json', () => {
  it('a usage error from the flags prints {"error": …} on stdout and the message on stderr', async () => {
    const run = await runSyncctl(['--json', 'publish', '--topic', 't', '--no-such-flag']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: 'E_USAGE', message: "unknown option '--no-such-flag'", exitCode: 2 },
    });
  });

  it('so does no command at all', async () => {
    const run = await runSyncctl(['--json']);
    expect(run.code).toBe(2);
    expect((JSON.parse(run.stdout) as ErrorDocument).error).toMatchObject({ code: 'E_USAGE', exitCode: 2 });
  });

  it('a failing command gives the same, redacted message and hint as stderr, also with SYNCCTL_JSON', async () => {
    const env = isolatedEnv({ SYNCCTL_CRM_TIMEOUT: 'token=hunter2', SYNCCTL_JSON: '1' });
    const run = await runSyncctl(
      ['fetch', '--source', 'crm', '--crm-url', 'http://127.0.0.1:9', '--out', join(tempDir(), 'x.ndjson')],
      { env },
    );
    expect(run.code).toBe(2);
    const doc = JSON.parse(run.stdout) as ErrorDocument;
    expect(doc.error).toMatchObject({ code: 'E_CONFIG', exitCode: 2, hint: expect.any(String) });
    expect(doc.error.message).toBe(errorLine(run.stderr));
    expect(run.stdout + run.stderr).not.toContain('hunter2');
  });

  it('fetch: the summary printed before failing is the only document, and carries the error', async () => {
    const server = await startCrmServer({ token: 'T', count: 10 });
    const url = server.url;
    await server.close();
    const dir = tempDir();
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: url,
      SYNCCTL_CRM_TOKEN: 'T',
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const args = ['--json', 'fetch', '--source', 'crm', '--crm-retries', '0'];
    const toFile = await runSyncctl([...args, '--out', join(dir, 'x.ndjson')], { env });
    expect(toFile.code).toBe(75);
    // One JSON document: a second one appended would not parse.
    const summary = JSON.parse(toFile.stdout) as FetchSummary;
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatchObject({ code: 'E_SOURCE_TRANSIENT', exitCode: 75 });
    expect(summary.error?.message).toBe(errorLine(toFile.stderr));
    expect(summary.error?.hint).toMatch(/rerun `syncctl --json fetch/);

    // NDJSON on stdout: stdout is the data's, the summary with its error is on stderr.
    const toStdout = await runSyncctl(args, { env });
    expect(toStdout.code).toBe(75);
    expect(toStdout.stdout).toBe('');
    expect(toStdout.stderr).toMatch(/"status": "failed"/);
  });
});
