import { describe, expect, it } from 'vitest';
import { flagOf, flagsAndEnv, whereToSet } from '../../src/settings/define.js';
import { CRM_SETTINGS } from '../../src/settings/sources.js';
import { FETCH_SETTINGS } from '../../src/settings/stages.js';

describe('names of a setting in messages', () => {
  it('spells flags and variables from the key', () => {
    expect(flagOf(FETCH_SETTINGS, 'full')).toBe('--full');
    expect(flagOf(CRM_SETTINGS, 'crmMaxRetryAfter')).toBe('--crm-max-retry-after');
    expect(flagsAndEnv(CRM_SETTINGS, 'crmToken')).toBe('--crm-token / SYNCCTL_CRM_TOKEN');
    expect(flagsAndEnv(CRM_SETTINGS, 'crmUrl', 'crmPath')).toBe(
      '--crm-url / SYNCCTL_CRM_URL, --crm-path / SYNCCTL_CRM_PATH',
    );
    expect(whereToSet('crmUrl')).toBe('--crm-url, SYNCCTL_CRM_URL or profile key crmUrl');
  });

  it('refuses a key its group does not define', () => {
    const group: Record<string, never> = FETCH_SETTINGS as never;
    expect(() => flagOf(group, 'crmUrl')).toThrow(/crmUrl is not a setting/);
  });
});
