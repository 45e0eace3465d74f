import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { createTopic, testBrokers, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

const TOKEN = 'crm-logs-secret-token';
let crm: CrmServer;

beforeAll(async () => {
  crm = await startCrmServer({ seed: 11, count: 60, token: TOKEN });
});
afterAll(async () => {
  await crm?.close();
});

function parseLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

describe('structured logs', () => {
  it('--log-format json: every stderr line is JSON with run id and stage, kafkajs included, no secret', async () => {
    const dir = tempDir('syncctl-logs-');
    const topic = uniqueName('logs');
    await createTopic(topic, 1);
    const run = await runSyncctl(
      [
        '--log-format',
        'json',
        '--verbose',
        'fetch',
        '--source',
        'crm',
        '--full',
        '--publish',
        '--topic',
        topic,
      ],
      {
        env: isolatedEnv({
          SYNCCTL_CRM_URL: crm.url,
          SYNCCTL_CRM_TOKEN: TOKEN,
          SYNCCTL_BROKERS: testBrokers(),
          SYNCCTL_STATE: join(dir, 'state.db'),
        }),
        timeoutMs: 120_000,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const lines = parseLines(run.stderr);
    expect(lines.length).toBeGreaterThan(0);
    const runIds = new Set(lines.map((l) => l.runId));
    expect(runIds.size).toBe(1);
    expect(typeof [...runIds][0]).toBe('string');
    for (const line of lines) {
      expect(line.stage).toBe('fetch');
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
      expect(typeof line.msg).toBe('string');
    }
    const kafkaLines = lines.filter((l) => l.component === 'kafkajs');
    expect(kafkaLines.length).toBeGreaterThan(0);
    // The fetch's own lines, kafkajs's included, name the source and topic they concern.
    for (const line of kafkaLines) expect(line).toMatchObject({ source: 'crm', topic });
    expect(run.stderr + run.stdout).not.toContain(TOKEN);
  });

  it('a failure is one JSON error line with code and exit code; --log-file gets it too', async () => {
    const file = join(tempDir('syncctl-logs-'), 'syncctl.log');
    const run = await runSyncctl(
      ['--log-format', 'json', '--log-file', file, 'topics', 'describe', '--connect-timeout', '1000'],
      { env: isolatedEnv({ SYNCCTL_BROKERS: '127.0.0.1:1' }) },
    );
    expect(run.code).toBe(75);
    const [line, ...rest] = parseLines(run.stderr);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: 'error',
      code: 'E_BROKER_UNREACHABLE',
      exitCode: 75,
      stage: 'topics describe',
    });
    const withoutTime = ({ time: _time, ...rest }: Record<string, unknown>) => rest;
    expect(parseLines(readFileSync(file, 'utf8')).map(withoutTime)).toEqual([withoutTime(line ?? {})]);
  });

  it('a bad --log-level is a usage error naming the flag', async () => {
    const bad = await runSyncctl(['--log-level', 'loud', 'config', 'list']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/log-level/);
  });
});
