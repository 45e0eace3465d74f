/**
 * The CRM source's configuration: settings (flags > SYNCCTL_CRM_* > profile > preset > defaults),
 * pagination-style defaults and validation, so crm-source.ts holds only the paging itself.
 */
import {
  CRM_PRESETS,
  CRM_SETTINGS,
  PRESET_MAPPING_SETTINGS,
  type CrmPreset,
  type CrmPresetName,
  type SettingGroup,
  resolveSettings,
  type SettingsSource,
} from '../settings/index.js';
import type { CrmFieldPaths, MappingSpec } from '../mapping/index.js';
import type { TlsFiles } from './tls.js';
import {
  checkConfig,
  configDefaults,
  configFromValues,
  definedOnly,
  settingErrors,
} from './source-settings.js';

export const CRM_PAGINATION_STYLES = CRM_SETTINGS.crmPagination.choices;
export type CrmPaginationStyle = (typeof CRM_PAGINATION_STYLES)[number];

/** Dot paths of the record's fields: the mapping's shorthands (see src/mapping/sources.ts). */
export type CrmFieldMap = CrmFieldPaths;

export interface CrmSourceConfig {
  /** Defaults of a known API (src/settings/presets.ts) under every value given here. */
  preset?: CrmPresetName;
  /** The preset's JSONata fields that no given per-field setting replaced (the mapping goes over them). */
  presetMapping?: MappingSpec;
  baseUrl: string;
  token: string;
  /** Listing path, relative to baseUrl. */
  path: string;
  pagination: CrmPaginationStyle;
  /** Dot path to the records array in the body; '' = the body is the array. */
  recordsPath: string;
  /** Dot path to the next cursor (cursor style) or next URL (next-url / odata); unused for link/offset. */
  nextPath: string;
  /** Query parameter carrying the cursor (cursor style). */
  cursorParam: string;
  /** Query parameter for the page size ('' to send none). */
  pageSizeParam: string;
  pageSize: number;
  /** Query parameter for the page number (offset style) and the number of the first page. */
  pageParam: string;
  firstPage: number;
  /** Dot path to the total record count (offset style; '' = stop at the first short page). */
  totalPath: string;
  /** '' when the CRM cannot filter by modification time (then only full runs). */
  sinceParam: string;
  /** '' when the CRM has no "modified before" filter (then a run lists up to now). */
  untilParam: string;
  /**
   * A query-string template with {since} and {until} for CRMs whose filter is an expression (OData
   * $filter, SOQL q=…) rather than two parameters; '' = use sinceParam / untilParam.
   */
  filterQuery: string;
  fields: CrmFieldMap;
  /** The `crmMapping` setting: a JSON file of JSONata expressions, or the JSON itself; '' = none. */
  mapping: string;
  /** A mapping given in code; takes the place of `mapping`. */
  mappingSpec?: MappingSpec;
  /** Per-attempt timeout of every request. */
  timeoutMs: number;
  /** Retries per request for transient failures (network, timeouts, 408/429/5xx, unparseable body). */
  retries: number;
  /** Cap of the exponential backoff between retries. */
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the request fails as transient instead. */
  maxRetryAfterMs: number;
  /** Exact duplicates (same id and content) within one run are dropped via an LRU of this many ids; 0 = off. */
  dedupeWindow: number;
  /** Largest response body; a larger one is cut off while streaming (LimitExceededError). */
  maxResponseBytes: number;
  /** HTTPS: a private CA, a client certificate (see tls.ts). */
  tls?: TlsFiles;
}

/** Per-style defaults: a CRM shaped like one of these needs only `pagination`. */
const STYLE_DEFAULTS: Record<CrmPaginationStyle, Partial<CrmSourceConfig>> = {
  cursor: { recordsPath: 'results', nextPath: 'paging.next.after', pageSizeParam: 'limit' },
  'next-url': { recordsPath: 'records', nextPath: 'nextRecordsUrl', pageSizeParam: 'limit' },
  odata: { recordsPath: 'value', nextPath: '@odata.nextLink', pageSizeParam: 'limit' },
  link: { recordsPath: '', nextPath: '', pageSizeParam: 'limit' },
  offset: { recordsPath: 'data', nextPath: '', pageSizeParam: 'pageSize', totalPath: 'total' },
};

const BASE_DEFAULTS = configDefaults(CRM_SETTINGS) as Partial<CrmSourceConfig> & { fields: CrmFieldMap };

export type CrmSourceInput = Partial<Omit<CrmSourceConfig, 'fields'>> & { fields?: Partial<CrmFieldMap> };

const fieldError = settingErrors('CRM', CRM_SETTINGS);

/** Validates options at the edge; every message names the field and how to set it. */
export function resolveCrmConfig(input: CrmSourceInput): CrmSourceConfig {
  const presetName = input.preset;
  if (presetName !== undefined && !Object.hasOwn(CRM_PRESETS, presetName)) {
    throw fieldError('preset', `must be one of ${Object.keys(CRM_PRESETS).join(', ')}, got "${presetName}"`);
  }
  const preset = presetName === undefined ? undefined : CRM_PRESETS[presetName];
  const fromPreset = (
    preset ? configFromValues(CRM_SETTINGS, preset.settings) : {}
  ) as Partial<CrmSourceConfig>;
  const pagination =
    input.pagination ?? fromPreset.pagination ?? (BASE_DEFAULTS.pagination as CrmPaginationStyle);
  if (!CRM_PAGINATION_STYLES.includes(pagination)) {
    throw fieldError(
      'pagination',
      `must be one of ${CRM_PAGINATION_STYLES.join(', ')}, got "${String(pagination)}"`,
    );
  }
  const config = {
    ...BASE_DEFAULTS,
    ...STYLE_DEFAULTS[pagination],
    ...fromPreset,
    ...definedOnly(input),
    pagination,
    fields: { ...BASE_DEFAULTS.fields, ...fromPreset.fields, ...definedOnly(input.fields) },
  } as CrmSourceConfig;
  // The operator's own since/until parameter beats a preset's filter template, as any setting does.
  if (input.filterQuery === undefined && (input.sinceParam !== undefined || input.untilParam !== undefined))
    config.filterQuery = '';
  // A config resolved before (CrmSource resolves its input again) keeps what was decided then.
  config.presetMapping = input.presetMapping ?? presetMappingOf(preset, input);
  checkConfig(config as unknown as Record<string, unknown>, CRM_SETTINGS, fieldError);

  if (!config.baseUrl)
    throw fieldError('baseUrl', 'is required (the CRM API base URL, e.g. https://crm.example.com)');
  let base: URL;
  try {
    base = new URL(config.baseUrl);
  } catch {
    throw fieldError('baseUrl', `is not a URL: "${config.baseUrl}"`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw fieldError('baseUrl', 'must be an http(s) URL');
  if (!config.token) throw fieldError('token', 'is required (the bearer token of the CRM API)');
  if (
    (pagination === 'cursor' || pagination === 'next-url' || pagination === 'odata') &&
    config.nextPath === ''
  ) {
    throw fieldError('nextPath', `is required for pagination "${pagination}"`);
  }
  if (pagination === 'cursor' && config.cursorParam === '')
    throw fieldError('cursorParam', 'is required for pagination "cursor"');
  if (pagination === 'offset' && config.pageParam === '')
    throw fieldError('pageParam', 'is required for pagination "offset"');
  if (config.filterQuery !== '') checkFilterQuery(config.filterQuery);
  return config;
}

/** A preset's JSONata fields, less those the input maps itself or sets a per-field setting for. */
function presetMappingOf(preset: CrmPreset | undefined, input: CrmSourceInput): MappingSpec {
  if (!preset?.mapping) return {};
  const given = definedOnly(input.fields);
  const fieldOf = (key: string) => (CRM_SETTINGS as SettingGroup)[key]?.field?.replace(/^fields\./, '');
  const spec: MappingSpec = {};
  for (const [field, text] of Object.entries(preset.mapping)) {
    const replacedBy = PRESET_MAPPING_SETTINGS[field as keyof typeof PRESET_MAPPING_SETTINGS];
    if (replacedBy.some((key) => given[fieldOf(key) as keyof CrmFieldMap] !== undefined)) continue;
    spec[field as keyof MappingSpec] = text;
  }
  return spec;
}

/** Only the values given (flag, variable, profile): a preset must not be hidden by a setting's default. */
const CRM_GIVEN = Object.fromEntries(
  Object.entries(CRM_SETTINGS).map(([key, def]) => {
    const { default: _default, ...rest } = def as SettingGroup[string];
    return [key, rest];
  }),
) as SettingGroup;

/** The CRM configuration from flags > SYNCCTL_CRM_* environment > profile > preset > defaults, validated. */
export function crmConfigFromSettings(
  settings: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): CrmSourceConfig {
  return resolveCrmConfig(
    configFromValues(CRM_SETTINGS, resolveSettings(CRM_GIVEN, settings, flags)) as CrmSourceInput,
  );
}

const FILTER_PLACEHOLDERS = ['{since}', '{until}'];

/** A template that cannot filter by time would turn every incremental run into a full one, silently. */
function checkFilterQuery(template: string): void {
  if (!template.includes('{since}'))
    throw fieldError('filterQuery', `must contain {since}, got "${template}"`);
  for (const placeholder of template.match(/\{[^}]*\}/g) ?? []) {
    if (!FILTER_PLACEHOLDERS.includes(placeholder))
      throw fieldError(
        'filterQuery',
        `knows only the placeholders ${FILTER_PLACEHOLDERS.join(' and ')}, got "${placeholder}"`,
      );
  }
}
