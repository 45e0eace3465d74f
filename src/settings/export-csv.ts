import { defineSettings } from './define.js';

export const EXPORT_CSV_SETTINGS = defineSettings({
  entity: {
    type: 'string',
    short: '-e',
    arg: '<name>',
    choices: ['unified', 'customers', 'products'],
    default: 'unified',
    description:
      'what to export: the unified view (a customer with its products per row), customers or products',
  },
  columns: {
    type: 'string',
    short: '-c',
    arg: '<list>',
    defaultText: 'every column, in the documented order',
    description:
      'comma-separated columns to write, in this order; customer.<field> / product.<field> pick one field',
  },
  explode: {
    type: 'boolean',
    default: false,
    description: 'one row per customer-product pair instead of one per customer (unified view)',
  },
  out: {
    type: 'string',
    arg: '<file>',
    defaultText: 'stdout (unless --upload)',
    description: 'write the CSV to this file (through a temporary file, renamed when complete)',
  },
  gzip: { type: 'boolean', default: false, description: 'gzip the CSV written to --out or stdout' },
  bom: {
    type: 'boolean',
    default: false,
    description: 'start with a UTF-8 byte order mark (for spreadsheets)',
  },
  formulaEscape: {
    type: 'boolean',
    default: true,
    description:
      "text cells a spreadsheet would run as a formula (= + - @, tab, CR) get a leading ' (--no-formula-escape writes them as they are)",
  },
  since: {
    type: 'string',
    arg: '<time>',
    description: 'only rows changed since this ISO time, or "last" for since the last completed export',
  },
  upload: {
    type: 'boolean',
    default: false,
    description: 'upload the CSV to the Analytics CSV endpoint (idempotent: the same export is stored once)',
  },
});
