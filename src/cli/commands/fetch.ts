import { Option, type Command } from 'commander';
import ora, { type Ora } from 'ora';
import { CrmSource, crmConfigFromSettings, type CrmFlags } from '../../connectors/crm-source.js';
import {
  INVENTORY_OPTIONS,
  inventoryConfigFromSettings,
  openInventorySource,
  type InventoryFlags,
} from '../../connectors/inventory-source.js';
import { createKafka } from '../../connectors/kafka.js';
import type { SourceConnector } from '../../connectors/source.js';
import { ExitCode, InterruptedError, SyncError, UsageError, type ErrorCode } from '../../errors.js';
import { TOPIC_OF, type Source } from '../../records/envelope.js';
import { pick } from '../../settings.js';
import { defaultStatePath, openDb } from '../../state/db.js';
import type { OutputSpec } from '../../stages/fetch-output.js';
import { parseTime, parseWindowSpec } from '../../stages/fetch-plan.js';
import { fetch, type FetchMode, type FetchSummary } from '../../stages/fetch.js';
import type { Logger } from '../../log.js';
import type { SettingsSource } from '../../settings.js';
import { contextFrom, parseIntFlag, type CliContext, type GlobalFlags } from '../context.js';
import { stopOnSignals } from '../signals.js';

interface FetchFlags extends Record<string, unknown> {
  source?: string;
  out?: string;
  publish?: boolean;
  topic?: string;
  full?: boolean;
  since?: string;
  until?: string;
  window?: string;
  concurrency?: number;
  resume?: boolean;
  restart?: boolean;
  rejects?: string;
}

const SOURCES: Source[] = ['crm', 'inventory'];

/** Connector settings: each also SYNCCTL_<NAME> and a profile key (see `syncctl fetch --help`). */
const SOURCE_OPTIONS: Option[] = [
  new Option('--crm-url <url>', 'CRM API base URL'),
  new Option('--crm-token <token>', 'CRM bearer token (prefer SYNCCTL_CRM_TOKEN: flags show up in ps)'),
  new Option('--crm-path <path>', 'listing path under the base URL (default /v1/customers)'),
  new Option('--crm-pagination <style>', 'cursor | next-url | odata | link | offset (default cursor)'),
  new Option('--crm-records-path <path>', 'dot path to the records array (default per style; "" = the body)'),
  new Option('--crm-next-path <path>', 'dot path to the next cursor / next URL (cursor, next-url, odata)'),
  new Option('--crm-cursor-param <name>', 'query parameter carrying the cursor (default after)'),
  new Option('--crm-page-size-param <name>', 'query parameter for the page size (default per style)'),
  new Option('--crm-page-size <n>', 'records per page (default 100)'),
  new Option('--crm-page-param <name>', 'page-number parameter for offset paging (default page)'),
  new Option('--crm-first-page <n>', 'number of the first page for offset paging (default 1)'),
  new Option('--crm-total-path <path>', 'dot path to the total count for offset paging (default total)'),
  new Option('--crm-since-param <name>', 'modified-since filter parameter (default updatedSince)'),
  new Option('--crm-until-param <name>', 'modified-before filter parameter (default updatedUntil)'),
  new Option('--crm-id-field <path>', 'record id field (default id)'),
  new Option('--crm-updated-at-field <path>', 'modification time field (default updatedAt)'),
  new Option('--crm-version-field <path>', 'version field, "" for none (default version)'),
  new Option('--crm-deleted-field <path>', 'boolean archived/deleted field, "" for none (default archived)'),
  new Option('--crm-deleted-at-field <path>', 'deletion time field, "" for none (default deletedAt)'),
  new Option('--crm-timeout <ms>', 'per-request timeout (default 30000)'),
  new Option('--crm-retries <n>', 'retries of a transient failure per request (default 4)'),
  new Option('--crm-backoff-limit <ms>', 'cap of the exponential backoff (default 30000)'),
  new Option('--crm-max-retry-after <ms>', 'longest Retry-After waited for (default 120000)'),
  new Option(
    '--crm-dedupe-window <n>',
    'drop exact repeats among the last n ids of a run, 0 = off (default 10000)',
  ),
  ...INVENTORY_OPTIONS.map((o) => new Option(o.flags, o.description)),
];

async function createSourceConnector(
  source: Source,
  settings: SettingsSource,
  flags: FetchFlags,
  logger: Logger,
): Promise<SourceConnector> {
  if (source === 'crm') return new CrmSource(crmConfigFromSettings(settings, flags as CrmFlags), { logger });
  // Loads the WSDL now: a broken or unreachable one fails before any output is opened.
  return openInventorySource(inventoryConfigFromSettings(settings, flags as InventoryFlags), { logger });
}

const EXAMPLES = `
Examples:
  # last changes since the previous run, as NDJSON into a file (incremental is the default)
  $ syncctl fetch --source crm --out customers.ndjson
  # straight into Kafka (topic customer_data / inventory_data unless --topic)
  $ syncctl fetch --source inventory --publish
  # everything again, regardless of the checkpoint
  $ syncctl fetch --source crm --full --publish
  # a backfill of one quarter in 1-day windows, 8 at a time; rerun the same command to resume it
  $ syncctl fetch --source crm --since 2024-01-01 --until 2024-04-01 --window 1d --concurrency 8 --publish
  # continue whatever was interrupted, start nothing new
  $ syncctl fetch --source crm --resume --publish
  # point at the sandbox and pipe into jq
  $ eval "$(syncctl sandbox env)"; syncctl fetch --source crm | jq -c '{id, op}'

Checkpoints live in the state store (--state / SYNCCTL_STATE; default <state dir>/state.db):
  fetch:<source>                                  incremental high-water mark + an interrupted run
  fetch:<source>:backfill:<since>/<until>[:<w>]   a backfill range and its windows
A plain run moves the high-water mark when it completes; --full moves it too (it saw everything);
--since/--until never move it. A killed run continues from its last durable page when rerun.

Summary: on stdout, or on stderr when the NDJSON itself goes to stdout (also with --json).
Rejected records go to --rejects (default <out>.rejects.ndjson, or ./syncctl-fetch-<source>-rejects.ndjson)
and make the exit code 3.
Every flag is also a SYNCCTL_<FLAG> variable (SYNCCTL_SOURCE, SYNCCTL_CRM_URL, SYNCCTL_WINDOW, …) and a
profile key (crmUrl, window, …): flags > environment > profile > defaults.`;

function describeSummary(s: FetchSummary): string {
  const secs = (s.durationMs / 1000).toFixed(2);
  const where = s.output.kind === 'kafka' ? `topic ${s.output.target}` : s.output.target;
  if (s.status === 'nothing-to-resume') return `${s.source}: nothing to resume`;
  const what = s.mode === 'backfill' ? 'backfill' : s.mode;
  const lines = [
    `${s.source} ${what}${s.resumed ? ' (resumed)' : ''}: ${s.status} — ${s.records} record(s) (${s.upserts} upserts, ${s.deletes} deletes) in ${s.pages} page(s) to ${where}, ${secs} s`,
    `requests: ${s.requests}, retries: ${s.retries}, rejects: ${s.rejects}${s.rejectsFile ? ` (${s.rejectsFile})` : ''}`,
  ];
  if (s.window) lines.push(`window: ${s.window.since ?? '(beginning)'} → ${s.window.until ?? '(now)'}`);
  if (s.backfill) {
    const b = s.backfill;
    lines.push(
      `windows: ${b.windows} of ${b.window} (concurrency ${b.concurrency}): ${b.completed} fetched, ${b.alreadyDone} already done, ${b.resumed} resumed, ${b.failed} failed, ${b.remaining} remaining`,
    );
  }
  const cp = s.checkpoint;
  lines.push(
    s.mode === 'backfill'
      ? `checkpoint ${cp.name}: ${cp.before ?? '(none)'} (backfills do not move it)`
      : `checkpoint ${cp.name}: ${cp.before ?? '(none)'} → ${cp.after ?? '(none)'}`,
  );
  return lines.join('\n');
}

/** The error the CLI exits with when the run did not complete: what went wrong, and where to pick up. */
function stopError(summary: FetchSummary, rerun: string): SyncError {
  const failure = summary.error;
  if (!failure) return new SyncError('E_INTERNAL', 'fetch did not complete', false, ExitCode.Failure);
  const kept =
    summary.records > 0 || summary.pages > 0
      ? `${summary.pages} page(s) with ${summary.records} record(s) before it are written and checkpointed`
      : 'nothing was fetched in this run';
  const where = failure.window
    ? ` in window ${failure.window.since ?? '(beginning)'} → ${failure.window.until ?? '(now)'}${failure.durablePages ? ` after page ${failure.durablePages}` : ' at its first page'}`
    : '';
  if (summary.status === 'interrupted') {
    return new InterruptedError(`fetch interrupted${where}; ${kept}`, {
      hint: `rerun \`${rerun}\` to continue from there`,
    });
  }
  const message = `${failure.message} — stopped${where}; ${kept}`;
  const hint = failure.retryable
    ? `${failure.hint ? `${failure.hint}; ` : ''}rerun \`${rerun}\` to continue from there`
    : (failure.hint ?? undefined);
  return new SyncError(failure.code as ErrorCode, message, failure.retryable, failure.exitCode as ExitCode, {
    ...(hint !== undefined ? { hint } : {}),
  });
}

/** The command to run again, without --restart and with secrets replaced (hints are not redacted). */
function rerunCommand(argv: string[]): string {
  const args = argv.slice(2);
  const out: string[] = [];
  for (let k = 0; k < args.length; k++) {
    const arg = args[k] as string;
    if (arg === '--restart') continue;
    const secret = /^--[\w-]*(token|password|secret)[\w-]*/.exec(arg);
    if (secret && arg.includes('=')) out.push(`${arg.slice(0, arg.indexOf('='))}=***`);
    else if (secret) {
      out.push(arg, '***');
      k++;
    } else out.push(/\s/.test(arg) ? `'${arg.replaceAll("'", "'\\''")}'` : arg);
  }
  return `syncctl ${out.join(' ')}`;
}

async function runFetch(ctx: CliContext, opts: FetchFlags, command: Command): Promise<ExitCode> {
  const settings = ctx.settings;
  const globals = command.optsWithGlobals<GlobalFlags>();
  const sourceName = pick(settings, 'source', opts.source);
  if (sourceName === undefined) throw new UsageError('--source is required (crm or inventory)');
  if (!SOURCES.includes(sourceName as Source)) {
    throw new UsageError(`--source must be crm or inventory, got "${sourceName}"`);
  }
  const source = sourceName as Source;
  const publish = pick(settings, 'publish', opts.publish, false);
  const out = pick(settings, 'out', opts.out);
  const full = pick(settings, 'full', opts.full, false);
  const sinceText = pick(settings, 'since', opts.since);
  const untilText = pick(settings, 'until', opts.until);
  const resume = pick(settings, 'resume', opts.resume, false);
  const restart = pick(settings, 'restart', opts.restart, false);
  const concurrency = pick(settings, 'concurrency', opts.concurrency, 4);
  const windowText = pick(settings, 'window', opts.window, '1d');
  if (publish && out !== undefined) throw new UsageError('--publish and --out cannot be used together');
  if (!publish && opts.topic !== undefined) throw new UsageError('--topic needs --publish');
  if (full && (sinceText !== undefined || untilText !== undefined)) {
    throw new UsageError(
      '--full and --since/--until cannot be used together (a backfill is already a full fetch of its range)',
    );
  }
  if (untilText !== undefined && sinceText === undefined) throw new UsageError('--until needs --since');
  if (resume && restart) throw new UsageError('--resume and --restart cannot be used together');
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new UsageError(`--concurrency must be an integer ≥ 1, got "${concurrency}"`);
  }
  let mode: FetchMode;
  if (sinceText !== undefined) {
    const since = parseTime('--since', sinceText);
    const until = untilText === undefined ? undefined : parseTime('--until', untilText);
    if (until !== undefined && Date.parse(until) <= Date.parse(since)) {
      throw new UsageError(`--until (${until}) must be after --since (${since})`);
    }
    mode = { kind: 'backfill', since, window: parseWindowSpec(windowText), ...(until ? { until } : {}) };
  } else {
    mode = { kind: full ? 'full' : 'incremental' };
  }

  let output: OutputSpec;
  let rejectsPath: string;
  if (publish) {
    const topic = pick(settings, 'topic', opts.topic, TOPIC_OF[source]);
    const brokers = ctx.brokers();
    output = {
      kind: 'kafka',
      kafka: createKafka({ brokers, logger: ctx.logger, connectTimeoutMs: ctx.connectTimeoutMs }),
      brokers,
      topic,
    };
    rejectsPath = `syncctl-fetch-${source}-rejects.ndjson`;
  } else if (out !== undefined && out !== '-') {
    output = { kind: 'file', path: out };
    rejectsPath = `${out}.rejects.ndjson`;
  } else {
    output = { kind: 'stdout' };
    rejectsPath = `syncctl-fetch-${source}-rejects.ndjson`;
  }
  rejectsPath = pick(settings, 'rejects', opts.rejects, rejectsPath);
  const dataOnStdout = output.kind === 'stdout';

  const connector: SourceConnector = await createSourceConnector(source, settings, opts, ctx.logger);
  const statePath = pick(settings, 'state', globals.state, defaultStatePath());
  const stop = stopOnSignals((signal) =>
    ctx.logger.warn(`${signal}: finishing the page in flight, then stopping (again to abort at once)`),
  );
  let spinner: Ora | undefined;
  // A spinner on the terminal would mix into NDJSON shown on the same terminal.
  if (ctx.interactive && !(dataOnStdout && process.stdout.isTTY)) {
    spinner = ora({ text: `fetching ${source}…`, stream: process.stderr }).start();
  }
  let summary: FetchSummary;
  try {
    const db = await openDb(statePath);
    try {
      summary = await fetch({
        connector,
        db,
        output,
        mode,
        resumeOnly: resume,
        restart,
        rejectsPath,
        concurrency,
        signal: stop.signal,
        logger: ctx.logger,
        onProgress: (p) => {
          if (!spinner) return;
          const windows = p.windowsTotal > 1 ? `, windows ${p.windowsDone}/${p.windowsTotal}` : '';
          spinner.text = `${source}: ${p.records} record(s) in ${p.pages} page(s)${windows}`;
        },
      });
    } finally {
      await db.close().catch(() => {});
    }
  } finally {
    spinner?.stop();
    stop.dispose();
    await connector.close().catch(() => {});
  }

  // Data owns stdout when the NDJSON goes there; the summary (text or JSON) then goes to stderr.
  const write = (text: string) => {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    if (dataOnStdout) process.stderr.write(line);
    else process.stdout.write(line);
  };
  if (ctx.json) write(JSON.stringify(summary, null, 2));
  else if (!ctx.quiet || summary.status !== 'completed') write(describeSummary(summary));

  if (summary.status === 'failed' || summary.status === 'interrupted') {
    throw stopError(summary, rerunCommand(process.argv));
  }
  if (summary.rejects > 0) {
    ctx.logger.warn(`${summary.rejects} record(s) rejected; see ${summary.rejectsFile ?? rejectsPath}`);
    return ExitCode.Partial;
  }
  return ExitCode.Ok;
}

export default function register(program: Command): void {
  const command = program
    .command('fetch')
    .description('page through the CRM or Inventory and write envelopes as NDJSON or publish them to Kafka')
    .option('-s, --source <name>', 'crm or inventory')
    .option('-o, --out <file>', 'write NDJSON to this file (default: stdout)')
    .option('--publish', "publish to the source's topic instead of writing NDJSON")
    .option('-t, --topic <topic>', 'topic for --publish (default customer_data / inventory_data)')
    .option('--full', 'ignore the checkpoint and fetch everything (moves the checkpoint when it completes)')
    .option('--since <time>', 'backfill from this ISO date/time (inclusive, UTC unless an offset is given)')
    .option(
      '--until <time>',
      'backfill up to this ISO date/time (exclusive; default: when the backfill starts)',
    )
    .option(
      '--window <size>',
      'backfill window: a duration (30m, 6h, 1d, 1w) or a number of windows (default 1d)',
    )
    .option(
      '--concurrency <n>',
      'backfill windows fetched at once (default 4)',
      parseIntFlag('--concurrency', 1),
    )
    .option('--resume', 'only continue interrupted work (a killed run or backfill); start nothing new')
    .option('--restart', 'discard interrupted progress (and finished windows of this backfill range) first')
    .option('--rejects <file>', 'where rejected source records go (NDJSON)');
  for (const option of SOURCE_OPTIONS) command.addOption(option);
  command.addHelpText('after', EXAMPLES).action(async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command & { exitCodeResult?: number };
    const ctx = contextFrom(cmd);
    cmd.exitCodeResult = await runFetch(ctx, cmd.opts<FetchFlags>(), cmd);
  });
}
