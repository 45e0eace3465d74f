import { describe, expect, it } from 'vitest';
import { ConfigError, UsageError } from '../../src/errors.js';
import { redact } from '../../src/redact.js';
import type { SettingsSource } from '../../src/settings/profiles.js';
import { resolveSettings } from '../../src/settings/resolve.js';
import { CRM_SETTINGS } from '../../src/settings/sources.js';

// The real definitions: values are validated against the registry's one schema, keyed by name.
const GROUP = {
  crmPageSize: CRM_SETTINGS.crmPageSize,
  crmToken: CRM_SETTINGS.crmToken,
  crmUrl: CRM_SETTINGS.crmUrl,
};

function source(
  env: Record<string, string> = {},
  profile: Record<string, string | number> = {},
): SettingsSource {
  return { env, profile, profileName: 'nightly', profilePath: '/etc/syncctl/config.json' };
}

describe('resolveSettings', () => {
  it('takes flags over SYNCCTL_* over the profile over the default', () => {
    expect(resolveSettings(GROUP, source()).crmPageSize).toBe(100);
    expect(resolveSettings(GROUP, source({}, { crmPageSize: 50 })).crmPageSize).toBe(50);
    expect(
      resolveSettings(GROUP, source({ SYNCCTL_CRM_PAGE_SIZE: '20' }, { crmPageSize: 50 })).crmPageSize,
    ).toBe(20);
    const flagged = resolveSettings(GROUP, source({ SYNCCTL_CRM_PAGE_SIZE: '20' }, { crmPageSize: 50 }), {
      crmPageSize: '7',
    });
    expect(flagged.crmPageSize).toBe(7);
  });

  it('treats an empty environment variable as unset', () => {
    expect(
      resolveSettings(GROUP, source({ SYNCCTL_CRM_PAGE_SIZE: '' }, { crmPageSize: 50 })).crmPageSize,
    ).toBe(50);
  });

  it('names where a bad value came from, with the error class of that origin', () => {
    expect(() => resolveSettings(GROUP, source(), { crmPageSize: '0' })).toThrow(UsageError);
    expect(() => resolveSettings(GROUP, source(), { crmPageSize: '0' })).toThrow(/--crm-page-size/);
    expect(() => resolveSettings(GROUP, source({ SYNCCTL_CRM_PAGE_SIZE: 'many' }))).toThrow(ConfigError);
    expect(() => resolveSettings(GROUP, source({ SYNCCTL_CRM_PAGE_SIZE: 'many' }))).toThrow(
      /SYNCCTL_CRM_PAGE_SIZE/,
    );
    let profileError: unknown;
    try {
      resolveSettings(GROUP, source({}, { crmPageSize: 0 }));
    } catch (error) {
      profileError = error;
    }
    expect(profileError).toBeInstanceOf(ConfigError);
    expect(String((profileError as Error).message)).toMatch(
      /crmPageSize in profile "nightly" \(\/etc\/syncctl\/config\.json\)/,
    );
  });

  it('remembers secret values and URL passwords so every later output masks them', () => {
    resolveSettings(GROUP, source({ SYNCCTL_CRM_TOKEN: 'tok-unit-resolve-9' }), {
      crmUrl: 'https://sync:pg-unit-pass@crm.example.com/api',
    });
    expect(redact('got tok-unit-resolve-9 and pg-unit-pass')).toBe('got *** and ***');
  });
});
