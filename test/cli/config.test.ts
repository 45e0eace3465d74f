import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { testBrokers } from '../helpers/kafka.js';

describe('syncctl config and settings precedence', () => {
  it('creates the profiles directory owner-only (0700) and the file 0600', async () => {
    const env = isolatedEnv();
    const set = await runSyncctl(['--json', 'config', 'set', 'crm-token', 'dir-mode-secret'], { env });
    expect(set.code, set.stderr).toBe(0);
    const { path } = JSON.parse(set.stdout) as { path: string };
    expect(dirname(path)).toBe(env.SYNCCTL_CONFIG_DIR);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('stores profile values in a private file and masks secrets when listing', async () => {
    const env = isolatedEnv();
    expect((await runSyncctl(['config', 'set', 'brokers', 'kafka-a:9092'], { env })).code).toBe(0);
    const set = await runSyncctl(
      ['--profile', 'nightly', '--json', 'config', 'set', 'crm-token', 's3cr3t-value'],
      {
        env,
      },
    );
    expect(set.code).toBe(0);
    const { path, key } = JSON.parse(set.stdout);
    expect(key).toBe('crmToken');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toContain('s3cr3t-value');

    const list = await runSyncctl(['config', 'list'], { env });
    expect(list.stdout).toContain('brokers = kafka-a:9092');
    expect(list.stdout).toContain('crmToken = ***');
    expect(list.stdout).not.toContain('s3cr3t-value');
    const listJson = await runSyncctl(['--json', 'config', 'list'], { env });
    expect(listJson.stdout).not.toContain('s3cr3t-value');

    const get = await runSyncctl(['--profile', 'nightly', 'config', 'get', 'crm-token'], { env });
    expect(get.stdout.trim()).toBe('s3cr3t-value');
    const unset = await runSyncctl(['--profile', 'nightly', 'config', 'unset', 'crm-token'], { env });
    expect(unset.code).toBe(0);
    // Its last setting gone, the profile is gone too.
    expect(
      (await runSyncctl(['--profile', 'nightly', 'config', 'get', 'crm-token'], { env })).stderr,
    ).toMatch(/profile "nightly" does not exist/);
    expect((await runSyncctl(['config', 'get', 'crm-url'], { env })).code).toBe(1);
  });

  it('resolves flags over SYNCCTL_* over the profile over defaults', async () => {
    const good = testBrokers();
    const env = isolatedEnv();
    await runSyncctl(['config', 'set', 'brokers', good], { env });
    // Profile alone: reaches the real broker.
    const fromProfile = await runSyncctl(['--json', 'topics', 'describe'], { env });
    expect(fromProfile.code).toBe(0);
    // Environment beats the profile.
    const envBad = { ...env, SYNCCTL_BROKERS: '127.0.0.1:1' };
    const fromEnv = await runSyncctl(['topics', 'describe'], { env: envBad });
    expect(fromEnv.code).toBe(75);
    expect(fromEnv.stderr).toContain('127.0.0.1:1');
    // The flag beats the environment.
    const fromFlag = await runSyncctl(['-b', good, '--json', 'topics', 'describe'], { env: envBad });
    expect(fromFlag.code).toBe(0);
  });

  it('names a profile that does not exist', async () => {
    const run = await runSyncctl(['--profile', 'nope', 'topics', 'describe'], { env: isolatedEnv() });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/profile "nope" does not exist/);
  });
});
