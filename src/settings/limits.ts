import { defineSettings, type SettingDef } from './define.js';

/**
 * Limits that keep one hostile or broken source from exhausting memory: how big an HTTP/SOAP answer,
 * a single record and a run's page count may get. Defaults are far above any real page or record, so
 * they only ever stop the pathological case.
 */

const MiB = 1024 * 1024;

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * MiB;
export const DEFAULT_MAX_RECORD_BYTES = 8 * MiB;

/** The per-system response cap (crmMaxResponseBytes, …): one definition, three systems. */
export function responseLimit(what: string) {
  return {
    type: 'integer',
    arg: '<bytes>',
    min: 1,
    default: DEFAULT_MAX_RESPONSE_BYTES,
    defaultText: `${DEFAULT_MAX_RESPONSE_BYTES} (64 MiB)`,
    description: `largest body of ${what}; a larger one is cut off while it streams in and stops the run (E_LIMIT)`,
    field: 'maxResponseBytes',
  } as const satisfies SettingDef;
}

/** fetch, publish, consume and run: per-record and per-run caps. */
export const LIMIT_SETTINGS = defineSettings({
  maxRecordBytes: {
    type: 'integer',
    arg: '<bytes>',
    min: 1,
    default: DEFAULT_MAX_RECORD_BYTES,
    defaultText: `${DEFAULT_MAX_RECORD_BYTES} (8 MiB)`,
    description:
      'largest record (its JSON envelope); a larger one goes to the reject file (fetch, publish) or the dead-letter topic (consume) and the exit code is 3',
  },
  maxPages: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    defaultText: 'no limit',
    description:
      'fetch at most this many pages per source and run, then stop cleanly (status page-limit, exit 0); the next run resumes after the last page',
  },
});
