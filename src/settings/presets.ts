/**
 * CRM presets: the pagination and field-mapping defaults of the API shapes operators meet most, as
 * data. A preset only changes defaults: any setting given by flag, SYNCCTL_* variable or profile
 * beats it, and so does a field of --crm-mapping or a per-field setting (--crm-id-field, …).
 */
import type { CRM_SETTINGS } from './sources.js';

type CrmSettingKey = Exclude<keyof typeof CRM_SETTINGS, 'crmPreset' | 'crmUrl' | 'crmToken' | 'crmMapping'>;

export interface CrmPreset {
  /** One line for help and README. */
  summary: string;
  /** Setting values the preset implies (by setting key). */
  settings: Partial<Record<CrmSettingKey, string | number>>;
  /**
   * JSONata for what a dot path cannot say, per mapping field; dropped when the operator maps that
   * field (--crm-mapping) or sets one of the settings in `replacedBy`.
   */
  mapping?: { deleted?: string };
}

/** Which per-field settings take a preset's mapping field over. */
export const PRESET_MAPPING_SETTINGS = {
  deleted: ['crmDeletedField', 'crmDeletedAtField'],
} as const satisfies Record<keyof NonNullable<CrmPreset['mapping']>, readonly CrmSettingKey[]>;

/** Spelled out (not derived from CRM_PRESETS) because the crmPreset setting's choices come from it. */
export const CRM_PRESET_NAMES = ['salesforce', 'hubspot', 'dynamics', 'link-header'] as const;
export type CrmPresetName = (typeof CRM_PRESET_NAMES)[number];

export const CRM_PRESETS: Readonly<Record<CrmPresetName, CrmPreset>> = {
  // REST query / queryAll (queryAll also lists deleted rows, IsDeleted = true). The SOQL goes into
  // the path (q=…) and, for incremental runs, into crmFilterQuery with its WHERE LastModifiedDate
  // clause: only the operator knows the object and fields to select. The page size is the
  // Sforce-Query-Options header's, so no page-size parameter is sent.
  salesforce: {
    summary: 'Salesforce REST query: records, nextRecordsUrl, Id, LastModifiedDate, IsDeleted',
    settings: {
      crmPagination: 'next-url',
      crmRecordsPath: 'records',
      crmNextPath: 'nextRecordsUrl',
      crmPageSizeParam: '',
      crmSinceParam: '',
      crmUntilParam: '',
      crmIdField: 'Id',
      crmUpdatedAtField: 'LastModifiedDate',
      crmVersionField: '',
      crmDeletedField: 'IsDeleted',
      crmDeletedAtField: '',
    },
  },
  // CRM v3 objects list: limit ≤ 100, cursor in paging.next.after; the list endpoint has no
  // modified-since filter (that is the POST search API), and archived objects are listed only with
  // archived=true.
  hubspot: {
    summary: 'HubSpot CRM v3 objects: results, paging.next.after, id, updatedAt, archived',
    settings: {
      crmPath: '/crm/v3/objects/contacts',
      crmPagination: 'cursor',
      crmRecordsPath: 'results',
      crmNextPath: 'paging.next.after',
      crmCursorParam: 'after',
      crmPageSizeParam: 'limit',
      crmPageSize: 100,
      crmSinceParam: '',
      crmUntilParam: '',
      crmIdField: 'id',
      crmUpdatedAtField: 'updatedAt',
      crmVersionField: '',
      crmDeletedField: 'archived',
      crmDeletedAtField: 'archivedAt',
    },
  },
  // Web API (OData v4): the page size is the Prefer: odata.maxpagesize header's, so none is sent as
  // a parameter; the time filter is a $filter expression. The id is <entity>id.
  dynamics: {
    summary:
      'Dynamics 365 Web API: value, @odata.nextLink, contactid, modifiedon, versionnumber, statecode = 1',
    settings: {
      crmPath: '/api/data/v9.2/contacts',
      crmPagination: 'odata',
      crmRecordsPath: 'value',
      crmNextPath: '@odata.nextLink',
      crmPageSizeParam: '',
      crmSinceParam: '',
      crmUntilParam: '',
      crmFilterQuery: '$filter=modifiedon ge {since} and modifiedon lt {until}',
      crmIdField: 'contactid',
      crmUpdatedAtField: 'modifiedon',
      crmVersionField: 'versionnumber',
      crmDeletedField: '',
      crmDeletedAtField: '',
    },
    // statecode 0 = active, 1 = inactive: a number, which no dot-path delete flag can read.
    mapping: { deleted: 'statecode = 1' },
  },
  // RFC 8288 Link: <…>; rel="next" over a bare JSON array (GitHub, GitLab, many in-house APIs).
  'link-header': {
    summary: 'a bare JSON array paged by an RFC 8288 Link rel="next" header (per_page)',
    settings: {
      crmPagination: 'link',
      crmRecordsPath: '',
      crmNextPath: '',
      crmPageSizeParam: 'per_page',
    },
  },
};
