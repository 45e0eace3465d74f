import { describe, expect, it } from 'vitest';
import { ConfigError, UsageError } from '../../src/errors.js';
import { redact } from '../../src/redact.js';
import {
  ALL_SETTINGS,
  ANALYTICS_SETTINGS,
  checkProfileValues,
  checkValue,
  CONSUME_SETTINGS,
  CRM_SETTINGS,
  envName,
  flagName,
  flagSpec,
  INVENTORY_SETTINGS,
  keyOfFlag,
  resolveSettings,
  SECRET_KEYS,
  type SettingsSource,
} from '../../src/settings/index.js';

const source = (
  env: Record<string, string> = {},
  profile: Record<string, string | number> = {},
): SettingsSource => ({
  env,
  profile,
  profileName: 'nightly',
  profilePath: '/etc/syncctl/profiles.json',
});

describe('the settings table', () => {
  it('derives one flag, one variable and one profile key per setting, all distinct', () => {
    const flags = new Set<string>();
    const envs = new Set<string>();
    for (const [key, def] of ALL_SETTINGS) {
      expect(keyOfFlag(flagName(key))).toBe(key);
      expect(envName(key)).toMatch(/^SYNCCTL_[A-Z0-9_]+$/);
      flags.add(flagName(key));
      envs.add(envName(key));
      expect(def.description.length).toBeGreaterThan(3);
      if (def.default !== undefined) expect(checkValue(key, def, def.default)).toMatchObject({ ok: true });
    }
    expect(flags.size).toBe(ALL_SETTINGS.size);
    expect(envs.size).toBe(ALL_SETTINGS.size);
    expect(envName('crmPageSize')).toBe('SYNCCTL_CRM_PAGE_SIZE');
    expect(flagSpec('source', { type: 'string', short: '-s', arg: '<name>', description: 'x' })).toBe(
      '-s, --source <name>',
    );
  });

  it('marks exactly the tokens, passwords and key passphrases as secrets', () => {
    expect([...SECRET_KEYS].sort()).toEqual([
      'analyticsKeyPassphrase',
      'analyticsToken',
      'crmKeyPassphrase',
      'crmToken',
      'inventoryKeyPassphrase',
      'inventoryPassword',
      'kafkaSaslPassword',
    ]);
  });

  it('gives the CRM, Inventory and Analytics the same five TLS settings', () => {
    for (const [prefix, group] of [
      ['crm', CRM_SETTINGS],
      ['inventory', INVENTORY_SETTINGS],
      ['analytics', ANALYTICS_SETTINGS],
    ] as const) {
      const tls = Object.entries(group)
        .filter(([, def]) => (def as { field?: string }).field?.startsWith('tls.'))
        .map(([key]) => key);
      expect(tls).toEqual(
        ['CaFile', 'CaOnly', 'CertFile', 'KeyFile', 'KeyPassphrase'].map((name) => `${prefix}${name}`),
      );
    }
  });

  it('checks values by type and bounds, coercing text', () => {
    const pageSize = CRM_SETTINGS.crmPageSize;
    expect(checkValue('crmPageSize', pageSize, '25')).toEqual({ ok: true, value: 25 });
    expect(checkValue('crmPageSize', pageSize, '0')).toEqual({
      ok: false,
      problem: 'must be an integer ≥ 1, got "0"',
    });
    expect(checkValue('crmPageSize', pageSize, '')).toMatchObject({ ok: false });
    expect(checkValue('crmPageSize', pageSize, '2.5')).toMatchObject({ ok: false });
    expect(checkValue('once', CONSUME_SETTINGS.once, 'yes')).toEqual({ ok: true, value: true });
    expect(checkValue('once', CONSUME_SETTINGS.once, 'off')).toEqual({ ok: true, value: false });
    expect(checkValue('once', CONSUME_SETTINGS.once, 'maybe')).toMatchObject({ ok: false });
    expect(checkValue('crmPagination', CRM_SETTINGS.crmPagination, 'pages')).toMatchObject({
      ok: false,
      problem: expect.stringContaining('must be one of cursor, next-url'),
    });
    expect(checkValue('group', CONSUME_SETTINGS.group, '')).toEqual({
      ok: false,
      problem: 'must not be empty',
    });
    // A secret's value is never repeated in a message.
    const bad = checkValue('crmToken', CRM_SETTINGS.crmToken, { value: 'tok-in-an-object' });
    expect(bad).toMatchObject({ ok: false });
    expect(JSON.stringify(bad)).not.toContain('tok-in-an-object');
  });

  it('reports unknown and invalid stored keys', () => {
    expect(checkProfileValues({ brokers: 'k:9092', batchSize: 5 })).toBeUndefined();
    expect(checkProfileValues({ brokerz: 'k:9092' })).toEqual({
      key: 'brokerz',
      problem: 'is not a setting syncctl knows',
    });
    expect(checkProfileValues({ batchSize: 'lots' })).toMatchObject({ key: 'batchSize' });
  });
});

describe('resolveSettings', () => {
  it('takes flags over SYNCCTL_* over the profile over defaults', () => {
    const values = resolveSettings(
      CONSUME_SETTINGS,
      source(
        { SYNCCTL_GROUP: 'from-env', SYNCCTL_BATCH_SIZE: '7' },
        { group: 'from-profile', idleTimeout: 9 },
      ),
      { batchSize: '3' },
    );
    expect(values).toMatchObject({
      group: 'from-env',
      batchSize: 3,
      idleTimeout: 9,
      sessionTimeout: 30,
      once: false,
    });
    expect(resolveSettings(CONSUME_SETTINGS, source({ SYNCCTL_GROUP: '' })).group).toBe('syncctl');
  });

  it('names where a bad value was given', () => {
    expect(() => resolveSettings(CONSUME_SETTINGS, source(), { group: '' })).toThrow(UsageError);
    expect(() => resolveSettings(CONSUME_SETTINGS, source(), { group: '' })).toThrow(
      '--group must not be empty',
    );
    expect(() => resolveSettings(CONSUME_SETTINGS, source({ SYNCCTL_BATCH_SIZE: 'lots' }))).toThrow(
      'SYNCCTL_BATCH_SIZE must be an integer ≥ 1, got "lots"',
    );
    try {
      resolveSettings(CONSUME_SETTINGS, source({}, { batchSize: 'lots' }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toBe(
        'batchSize in profile "nightly" (/etc/syncctl/profiles.json) must be an integer ≥ 1, got "lots"',
      );
      expect((err as ConfigError).message).not.toContain('SYNCCTL_');
      expect((err as ConfigError).hint).toContain('syncctl --profile nightly config set batchSize');
    }
  });

  it('masks every resolved secret, and passwords inside URLs, in all later output', () => {
    resolveSettings(
      CRM_SETTINGS,
      source({ SYNCCTL_CRM_TOKEN: 'tok-5ecret-abc', SYNCCTL_CRM_URL: 'http://u:P%40ss-w0rd@h:1/' }),
    );
    expect(redact('sent tok-5ecret-abc to the CRM')).toBe('sent *** to the CRM');
    expect(redact('password was P@ss-w0rd')).not.toContain('P@ss-w0rd');
    expect(redact('rerun with --crm-url http://u:P%40ss-w0rd@h:1/')).not.toContain('P%40ss-w0rd');
  });
});
