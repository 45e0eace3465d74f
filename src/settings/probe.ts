import { defineSettings } from './define.js';
import { FETCH_SETTINGS } from './stages.js';

/** `syncctl probe`: the first page of a source, raw next to mapped. */
export const PROBE_SETTINGS = defineSettings({
  source: { ...FETCH_SETTINGS.source, description: 'the source to probe: crm or inventory (required)' },
  limit: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    default: 10,
    description:
      'show at most this many records of the page (warnings cover the whole page; rejects are always shown)',
  },
});
