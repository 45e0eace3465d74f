/**
 * CRM presets: defaults only. Every preset value is a valid CRM setting; a flag, variable or profile
 * value beats the preset, the preset beats the pagination style's and the setting's defaults, and a
 * preset's JSONata field gives way to the operator's mapping or per-field setting.
 */
import { describe, expect, it } from 'vitest';
import { CrmSource, crmConfigFromSettings } from '../../src/connectors/crm-source.js';
import { ConfigError, UsageError } from '../../src/errors.js';
import { CRM_PRESETS, CRM_SETTINGS, checkValue, type SettingsSource } from '../../src/settings/index.js';
import type { RecordReading } from '../../src/mapping/index.js';

function source(
  env: Record<string, string> = {},
  profile: Record<string, string | number> = {},
): SettingsSource {
  return {
    env: { SYNCCTL_CRM_URL: 'http://127.0.0.1:1', SYNCCTL_CRM_TOKEN: 't', ...env },
    profile,
    profileName: 'default',
    profilePath: '/nowhere',
  };
}

describe('CRM presets', () => {
  it('hold only CRM settings with valid values', () => {
    for (const [name, preset] of Object.entries(CRM_PRESETS)) {
      for (const [key, value] of Object.entries(preset.settings)) {
        const def = (CRM_SETTINGS as Record<string, (typeof CRM_SETTINGS)[keyof typeof CRM_SETTINGS]>)[key];
        expect(def, `${name}: ${key}`).toBeDefined();
        expect(checkValue(key, def!, value), `${name}: ${key}`).toMatchObject({ ok: true });
      }
    }
  });

  it('set pagination and field defaults', () => {
    const sf = crmConfigFromSettings(source(), { crmPreset: 'salesforce' });
    expect(sf).toMatchObject({
      preset: 'salesforce',
      pagination: 'next-url',
      recordsPath: 'records',
      nextPath: 'nextRecordsUrl',
      pageSizeParam: '',
      sinceParam: '',
      untilParam: '',
      fields: { id: 'Id', updatedAt: 'LastModifiedDate', version: '', deleted: 'IsDeleted', deletedAt: '' },
    });
    const hs = crmConfigFromSettings(source({ SYNCCTL_CRM_PRESET: 'hubspot' }));
    expect(hs).toMatchObject({ path: '/crm/v3/objects/contacts', pagination: 'cursor', pageSize: 100 });
    const link = crmConfigFromSettings(source(), { crmPreset: 'link-header' });
    expect(link).toMatchObject({ pagination: 'link', recordsPath: '', pageSizeParam: 'per_page' });
    // No preset: the settings' defaults, as before.
    expect(crmConfigFromSettings(source())).toMatchObject({
      pagination: 'cursor',
      path: '/v1/customers',
      sinceParam: 'updatedSince',
      fields: { id: 'id', deleted: 'archived' },
    });
  });

  it('give way to a flag, a variable and a profile value', () => {
    const config = crmConfigFromSettings(
      source({ SYNCCTL_CRM_SINCE_PARAM: 'updatedSince' }, { crmPreset: 'hubspot', crmPath: '/v1/customers' }),
      { crmPageSize: 7, crmIdField: 'hs_object_id' },
    );
    expect(config).toMatchObject({
      preset: 'hubspot',
      path: '/v1/customers',
      sinceParam: 'updatedSince',
      untilParam: '',
      pageSize: 7,
      fields: { id: 'hs_object_id', updatedAt: 'updatedAt', deleted: 'archived' },
    });
  });

  it("map Dynamics' statecode as the delete, unless the operator maps deletes", async () => {
    const read = async (flags: Record<string, unknown>, record: Record<string, unknown>) => {
      const crm = new CrmSource(crmConfigFromSettings(source(), { crmPreset: 'dynamics', ...flags }));
      return (await crm.mapper.map(record)) as Exclude<RecordReading, { reject: unknown }>;
    };
    const row = { contactid: 'c-1', modifiedon: '2024-05-01T10:00:00Z', versionnumber: 42, statecode: 1 };
    expect(await read({}, row)).toMatchObject({ id: 'c-1', op: 'delete', sourceVersion: 42 });
    expect(await read({}, { ...row, statecode: 0 })).toMatchObject({ op: 'upsert' });
    // The operator's per-field setting and mapping field both beat the preset's expression.
    expect(await read({ crmDeletedField: 'gone' }, row)).toMatchObject({ op: 'upsert' });
    expect(await read({ crmDeletedField: 'gone' }, { ...row, gone: true })).toMatchObject({ op: 'delete' });
    expect(await read({ crmMapping: '{"deleted": "statecode = 2"}' }, row)).toMatchObject({ op: 'upsert' });
  });

  it('refuse an unknown preset, naming the choices', () => {
    expect(() => crmConfigFromSettings(source(), { crmPreset: 'sap' })).toThrow(UsageError);
    expect(() => crmConfigFromSettings(source({ SYNCCTL_CRM_PRESET: 'sap' }))).toThrow(
      /must be one of salesforce, hubspot, dynamics, link-header/,
    );
    expect(() => crmConfigFromSettings(source({ SYNCCTL_CRM_PRESET: 'sap' }))).toThrow(ConfigError);
  });
});
