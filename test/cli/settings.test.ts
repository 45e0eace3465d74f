import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

function profilesFile(env: Record<string, string | undefined>): string {
  return join(env.SYNCCTL_CONFIG_DIR as string, 'profiles.json');
}

function writeProfiles(env: Record<string, string | undefined>, content: string): string {
  const path = profilesFile(env);
  mkdirSync(env.SYNCCTL_CONFIG_DIR as string, { recursive: true });
  writeFileSync(path, content);
  return path;
}

const output = (run: CliRun) => run.stdout + run.stderr;

describe('settings: one definition for flags, variables, profiles and config set', () => {
  it('config set refuses unknown keys and wrong types, and stores typed values', async () => {
    const env = isolatedEnv();
    const unknown = await runSyncctl(['config', 'set', 'brokerz', 'k:9092'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('"brokerz" is not a setting');
    const wrong = await runSyncctl(['config', 'set', 'batch-size', 'lots'], { env });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('batchSize must be an integer ≥ 1, got "lots"');
    const choice = await runSyncctl(['config', 'set', 'crm-pagination', 'pages'], { env });
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('must be one of cursor, next-url, odata, link, offset');

    const ok = await runSyncctl(['--json', 'config', 'set', 'batch-size', '50'], { env });
    expect(ok.code).toBe(0);
    const stored = JSON.parse(readFileSync(profilesFile(env), 'utf8'));
    expect(stored).toEqual({ default: { batchSize: 50 } });
    // Profile keys work as names too.
    expect((await runSyncctl(['config', 'set', 'crmPageSize', '20'], { env })).code).toBe(0);
  });

  it('names the profile and the file when a stored value is bad, never a variable that is not set', async () => {
    const env = isolatedEnv();
    const path = writeProfiles(env, JSON.stringify({ default: { batchSize: 'lots' } }));
    const run = await runSyncctl(['publish', '--topic', 't', '--dry-run'], { env, input: '' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `profile "default" in ${path}: batchSize must be an integer ≥ 1, got "lots"`,
    );
    expect(run.stderr).not.toContain('SYNCCTL_BATCH_SIZE');
    // The way out works despite the bad value.
    expect((await runSyncctl(['config', 'unset', 'batch-size'], { env })).code).toBe(0);
    expect((await runSyncctl(['publish', '--topic', 't', '--dry-run'], { env, input: '' })).code).toBe(0);

    writeProfiles(env, JSON.stringify({ default: { brokerz: 'k:9092' } }));
    const unknown = await runSyncctl(['topics', 'describe'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('brokerz is not a setting syncctl knows');
  });

  it('a bad variable names the variable', async () => {
    const env = isolatedEnv({ SYNCCTL_BATCH_SIZE: 'lots' });
    const run = await runSyncctl(['publish', '--topic', 't', '--dry-run'], { env, input: '' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('SYNCCTL_BATCH_SIZE must be an integer ≥ 1, got "lots"');
    const flag = await runSyncctl(['publish', '--topic', 't', '--batch-size', '0', '--dry-run'], {
      env: isolatedEnv(),
      input: '',
    });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--batch-size must be an integer ≥ 1, got "0"');
  });

  it('a mistyped SYNCCTL_PROFILE fails like a mistyped --profile', async () => {
    const env = isolatedEnv();
    expect(
      (await runSyncctl(['--profile', 'staging', 'config', 'set', 'brokers', '127.0.0.1:1'], { env })).code,
    ).toBe(0);
    const typo = await runSyncctl(['topics', 'describe'], { env: { ...env, SYNCCTL_PROFILE: 'stagin' } });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('profile "stagin" does not exist (SYNCCTL_PROFILE=stagin');
    const flagTypo = await runSyncctl(['--profile', 'stagin', 'topics', 'describe'], { env });
    expect(flagTypo.code).toBe(2);
    // The right name reaches the profile's (unreachable) broker: exit 75, naming it.
    const right = await runSyncctl(['topics', 'describe'], { env: { ...env, SYNCCTL_PROFILE: 'staging' } });
    expect(right.code).toBe(75);
    expect(right.stderr).toContain('127.0.0.1:1');
  });

  it('a corrupt profiles file is named, and does not stop sandbox status or down', async () => {
    const env = isolatedEnv();
    const path = writeProfiles(env, '{"default": {"brokers": ');
    const run = await runSyncctl(['topics', 'describe'], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot read the config profiles in ${path}`);
    const dir = tempDir('syncctl-sandbox-');
    const status = await runSyncctl(['sandbox', 'status', '--dir', dir], { env });
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('not running');
    expect(status.stderr).toContain(path);
    const down = await runSyncctl(['sandbox', 'down', '--dir', dir], { env });
    expect(down.code).toBe(0);
  });
});

describe('secrets never appear in the output of a failing command', () => {
  const SECRETS = {
    crmToken: 'crm-T0ken-zz91',
    urlPassword: 'PassW0rdXY',
    inventoryPassword: 'inv-Pa55-qq72',
    analyticsToken: 'an-T0ken-yy83',
    pgPassword: 'pg-Pa55-ww64',
  };
  const env = () =>
    isolatedEnv({
      SYNCCTL_CRM_TOKEN: SECRETS.crmToken,
      SYNCCTL_INVENTORY_USER: 'inv-user',
      SYNCCTL_INVENTORY_PASSWORD: SECRETS.inventoryPassword,
      SYNCCTL_ANALYTICS_URL: 'http://127.0.0.1:1/',
      SYNCCTL_ANALYTICS_TOKEN: SECRETS.analyticsToken,
    });
  const cases: [string, string[]][] = [
    [
      'fetch with a password in the CRM URL',
      [
        'fetch',
        '--source',
        'crm',
        '--full',
        '--crm-url',
        `http://user:${SECRETS.urlPassword}@127.0.0.1:1`,
        '--crm-retries',
        '0',
        '--out',
        'OUT',
      ],
    ],
    [
      'fetch with the token as a flag',
      [
        'fetch',
        '--source',
        'crm',
        '--full',
        '--crm-url',
        'http://127.0.0.1:1',
        `--crm-token=${SECRETS.crmToken}`,
        '--crm-retries',
        '0',
        '--out',
        'OUT',
      ],
    ],
    [
      'fetch from an unreachable WSDL',
      [
        'fetch',
        '--source',
        'inventory',
        '--inventory-wsdl',
        `http://u:${SECRETS.urlPassword}@127.0.0.1:1/?wsdl`,
        '--inventory-retries',
        '0',
        '--out',
        'OUT',
      ],
    ],
    [
      'consume with an unreachable broker',
      ['-b', '127.0.0.1:1', 'consume', '--once', '--analytics-token', SECRETS.analyticsToken],
    ],
    [
      'consume with an unreachable PostgreSQL state store',
      [
        '-b',
        '127.0.0.1:1',
        '--state',
        `postgres://sync:${SECRETS.pgPassword}@127.0.0.1:1/test`,
        'consume',
        '--once',
      ],
    ],
  ];

  it.each(cases)('%s', async (_name, args) => {
    const dir = tempDir('syncctl-secrets-');
    const argv = args.map((a) => (a === 'OUT' ? join(dir, 'out.ndjson') : a));
    for (const json of [false, true]) {
      const run = await runSyncctl(json ? ['--json', ...argv] : argv, { env: env(), timeoutMs: 60_000 });
      expect(run.code, output(run)).not.toBe(0);
      for (const secret of Object.values(SECRETS)) expect(output(run)).not.toContain(secret);
    }
  });
});
