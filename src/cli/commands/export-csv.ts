import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  EXPORT_CSV_SETTINGS,
  resolveSettings,
} from '../../settings/index.js';
import type { ExportCsvSummary, ExportEntity } from '../../stages/export-csv.js';
import { DEFAULT_COLUMNS } from '../../stages/export-csv-columns.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

export function describeSummary(s: ExportCsvSummary): string {
  const what = s.entity === 'unified' ? `unified view${s.exploded ? ' (exploded)' : ''}` : s.entity;
  const lines = [
    `exported ${s.rows} row(s) of the ${what}, ${s.bytes} bytes${s.out ? ` to ${s.out}` : ''}${s.since ? ` (changed since ${s.since})` : ''} in ${(s.durationMs / 1000).toFixed(2)} s`,
  ];
  if (s.upload) {
    lines.push(
      `${s.upload.replayed ? 'already uploaded (acknowledged, not stored again)' : 'uploaded'}: Analytics upload ${s.upload.uploadId}, ${s.upload.rows} row(s), retries ${s.upload.retries}`,
    );
  }
  return lines.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('export-csv')
    .description('write the unified view (or customers or products) from the state store as CSV');
  addSettingOptions(command, EXPORT_CSV_SETTINGS);
  addSettingOptions(command, CONSUME_SETTINGS, ['productRefPath']);
  addSettingOptions(command, ANALYTICS_SETTINGS)
    .addHelpText(
      'after',
      `
Columns (default order; --columns picks and orders them):
  unified view   ${DEFAULT_COLUMNS.unified.join(', ')}
  --explode      ${DEFAULT_COLUMNS.exploded.join(', ')}
  customers      ${DEFAULT_COLUMNS.customers.join(', ')}
  products       ${DEFAULT_COLUMNS.products.join(', ')}
  and customer.<field> / product.<field> (dots walk into objects) for one field of the data.
Id lists are ;-joined beside a count; customer, product, products, sourceVersions and data are
canonical JSON; a missing or null field is an empty cell. --explode writes one row per referenced
product (resolved ones in the customer's order, then unresolved ones), and one row with empty
product columns for a customer without products.

RFC 4180 CSV in UTF-8 with CRLF line ends and a header row. Text cells starting with = + - @ (also
after leading whitespace, and their full-width forms), a tab or CR get a leading ' so spreadsheets
show them instead of running them. --since compares the time syncctl merged a row (a customer counts
as changed when a product it references changed); --since last continues from the start of the last
completed export of the same --entity. --upload sends the plain CSV to Analytics under an
Idempotency-Key derived from its bytes: uploading the same export again is acknowledged, not stored
twice.

Exit codes: 0 written; 2 usage/config; 75 Analytics or the state store unavailable (rerun later);
1 other failures (--out is left untouched).

Examples:
  $ syncctl export-csv --out unified.csv
  $ syncctl export-csv --explode --columns customerId,customer.name,productId,product.name --bom --out sheet.csv
  $ syncctl export-csv --entity products --since 2026-01-01 --gzip > products.csv.gz
  $ syncctl export-csv --since last --upload --out nightly.csv`,
    )
    .action(
      action(async (ctx, _opts, cmd) => {
        const { analyticsConfigFromSettings } = await import('../../connectors/analytics-sink.js');
        const { rejectDirectory } = await import('../../paths.js');
        const { exportCsv } = await import('../../stages/export-csv.js');
        const { openDb } = await import('../../state/db.js');
        const { stopOnSignals } = await import('../signals.js');
        const { startProgress } = await import('../spinner.js');
        const flags = cmd.opts();
        const settings = resolveSettings(EXPORT_CSV_SETTINGS, ctx.settings, flags);
        const { productRefPath } = resolveSettings(CONSUME_SETTINGS, ctx.settings, flags);
        const columns = settings.columns
          ?.split(',')
          .map((c) => c.trim())
          .filter((c) => c !== '');
        if (columns !== undefined && columns.length === 0) throw new UsageError('--columns is empty');
        const toStdout = settings.out === undefined && !settings.upload;
        if (toStdout && ctx.json) {
          throw new UsageError('--json needs --out or --upload: the CSV itself goes to stdout', {
            hint: 'add --out FILE, or leave out --json (the summary then goes to stderr)',
          });
        }
        if (toStdout && process.stdout.isTTY && settings.gzip) {
          throw new UsageError('--gzip would write binary data to the terminal', {
            hint: 'add --out FILE.csv.gz or redirect stdout',
          });
        }
        if (settings.out !== undefined) rejectDirectory(settings.out, '--out');
        const upload = settings.upload ? analyticsConfigFromSettings(ctx.settings, flags) : undefined;
        const db = await openDb(ctx.statePath());
        const stop = stopOnSignals((signal) => ctx.logger.warn(`${signal}: stopping the export`));
        // CSV on a terminal's stdout would be torn by a spinner on the same terminal.
        const progress = startProgress(ctx.interactive && !(toStdout && process.stdout.isTTY), 'exporting…');
        let summary: ExportCsvSummary;
        try {
          summary = await exportCsv({
            db,
            entity: settings.entity as ExportEntity,
            ...(columns ? { columns } : {}),
            explode: settings.explode,
            bom: settings.bom,
            formulaEscape: settings.formulaEscape,
            gzip: settings.gzip,
            ...(settings.out !== undefined ? { out: settings.out } : {}),
            ...(toStdout ? { stdout: process.stdout } : {}),
            ...(settings.since !== undefined ? { since: settings.since } : {}),
            ...(upload ? { upload } : {}),
            productRefPath,
            logger: ctx.logger,
            signal: stop.signal,
            onProgress: (p) =>
              progress.update(
                p.uploading ? `uploading ${p.rows} row(s) to Analytics…` : `exported ${p.rows} row(s)`,
                p.uploading ? undefined : p.rows,
              ),
          });
        } finally {
          progress.stop();
          stop.dispose();
          await db.close();
        }
        // With the CSV on stdout, the summary goes to stderr.
        if (toStdout) {
          ctx.logger.info(describeSummary(summary));
          return { data: summary, text: '' };
        }
        return { data: summary, text: describeSummary(summary) };
      }),
    );
}
