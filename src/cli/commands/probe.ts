import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.js';
import type { Source } from '../../records/envelope.js';
import { CRM_SETTINGS, INVENTORY_SETTINGS, PROBE_SETTINGS, flagOf } from '../../settings/index.js';
import type { ProbeRecord, ProbeReport } from '../../stages/probe.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { addSettingOptions } from '../options.js';

const HELP = `
Fetches the first page of a full listing (up to now) with the current settings — flags, SYNCCTL_*
variables, profile, preset — and shows each raw record next to what the mapping makes of it: id,
updatedAt, version, deleted, productIds, data. Nothing is published, no checkpoint is read or moved,
the state store is not opened. Run it before the first real fetch of a new system.

Warnings (exit code 3; 0 when there are none): records without an id or with a modification time
that does not parse, ids repeated on the page, every modification time equal or in the future, every
record deleted, product references that look like one delimited string ("P1;P2"), rejects, an empty
page. Notes (no effect on the exit code): no record deleted, a page not in time order, no productIds
mapped.

Examples:
  $ syncctl probe --source crm
  $ syncctl probe --source crm --crm-preset salesforce --crm-mapping mapping.json --limit 5
  $ syncctl probe --source inventory --json | jq '.records[].mapped'
  $ syncctl probe --source crm -o plain --no-headers | cut -f2,5`;

/** A cell of at most `max` characters: a record's JSON can be many kB. */
function cell(value: unknown, max = 60): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function recordRow(r: ProbeRecord): unknown[] {
  const m = r.mapped;
  if (!m) return [r.index, '(rejected)', '', '', '', '', '', cell(r.raw)];
  const sameAsRaw = JSON.stringify(m.data) === JSON.stringify(r.raw);
  return [
    r.index,
    m.id,
    m.updatedAt,
    m.version ?? '',
    m.deleted ? 'yes' : 'no',
    m.productIds === undefined ? '(not mapped)' : m.productIds.join(' '),
    m.data === null ? '(none: delete)' : sameAsRaw ? '(the raw record)' : cell(m.data),
    cell(r.raw),
  ];
}

function describe(r: ProbeReport, table: CliContext['table']): string {
  const parts = [
    `${r.source}: ${r.pageRecords} record(s) on the first page (${r.mapped} mapped, ${r.rejected} rejected)${r.morePages ? ', more pages follow' : ''}; showing ${r.records.length}`,
  ];
  if (r.records.length > 0) {
    parts.push(
      table(
        ['#', 'id', 'updatedAt', 'version', 'deleted', 'productIds', 'data', 'raw'],
        r.records.map(recordRow),
      ),
    );
  }
  const rejects = r.records.filter((x) => x.reject);
  if (rejects.length > 0) {
    parts.push(
      'rejected:',
      table(
        ['#', 'reason'],
        rejects.map((x) => [x.index, x.reject?.reason ?? '']),
      ),
    );
  }
  for (const w of r.warnings) parts.push(`warning: ${w.message}`);
  for (const n of r.notes) parts.push(`note: ${n.message}`);
  if (r.warnings.length === 0) parts.push('no warnings');
  return parts.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('probe')
    .description('show how the first page of a source maps: raw records next to mapped ones, with warnings');
  addSettingOptions(command, PROBE_SETTINGS);
  addSettingOptions(command, CRM_SETTINGS);
  addSettingOptions(command, INVENTORY_SETTINGS);
  command.addHelpText('after', HELP).action(
    action(async (ctx, opts: Record<string, unknown>) => {
      const { probe } = await import('../../stages/probe.js');
      const { openSource } = await import('../../stages/wiring.js');
      const { source, limit } = ctx.resolve(PROBE_SETTINGS);
      if (source === undefined) {
        throw new UsageError(`${flagOf(PROBE_SETTINGS, 'source')} is required (crm or inventory)`);
      }
      const connector = await openSource({
        source: source as Source,
        settings: ctx.settings,
        flags: opts,
        logger: ctx.logger,
        keepReadings: true,
      });
      let report: ProbeReport;
      try {
        report = await probe({ connector, limit });
      } finally {
        await connector.close();
      }
      return {
        data: report,
        text: describe(report, (head, rows) => ctx.table(head, rows)),
        exitCode: report.warnings.length > 0 ? ExitCode.Partial : ExitCode.Ok,
      };
    }),
  );
}
