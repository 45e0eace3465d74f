import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { ExitCode, UsageError, type SyncError } from '../../errors.js';
import type { Source } from '../../records/envelope.js';
import {
  CRM_SETTINGS,
  FETCH_SETTINGS,
  flagOf,
  INVENTORY_SETTINGS,
  isSecretKey,
  keyOfFlag,
  LIMIT_SETTINGS,
} from '../../settings/index.js';
import { parseTime, parseWindowSpec } from '../../stages/fetch/plan.js';
import type { FetchMode, FetchSummary } from '../../stages/fetch.js';
import type { FetchTarget } from '../../stages/wiring.js';
import type { HeldLock } from '../../state/locks.js';
import { redact } from '../../redact.js';
import type { CliContext } from '../context.js';
import { addSettingOptions } from '../options.js';
import { claimStdout, writeStdout } from '../output.js';

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

export function describeSummary(s: FetchSummary): string {
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
  if (s.status === 'page-limit')
    lines.push(
      `stopped at ${flagOf(LIMIT_SETTINGS, 'maxPages')}; the next run continues after the last page`,
    );
  const cp = s.checkpoint;
  lines.push(
    s.mode === 'backfill'
      ? `checkpoint ${cp.name}: ${cp.before ?? '(none)'} (backfills do not move it)`
      : `checkpoint ${cp.name}: ${cp.before ?? '(none)'} → ${cp.after ?? '(none)'}`,
  );
  return lines.join('\n');
}

/** The error the CLI exits with when the run did not complete: what went wrong, and where to pick up. */
function stopError(summary: FetchSummary, failure: SyncError, rerun: string): SyncError {
  const kept =
    summary.records > 0 || summary.pages > 0
      ? `${summary.pages} page(s) with ${summary.records} record(s) before it are written and checkpointed`
      : 'nothing was fetched in this run';
  const stop = summary.stoppedAt;
  const where = stop?.window
    ? ` in window ${stop.window.since ?? '(beginning)'} → ${stop.window.until ?? '(now)'}${stop.durablePages ? ` after page ${stop.durablePages}` : ' at its first page'}`
    : '';
  const again = `rerun \`${rerun}\` to continue from there`;
  if (summary.status === 'interrupted')
    return failure.withContext(`fetch interrupted${where}; ${kept}`, again);
  return failure.withContext(
    `${failure.message} — stopped${where}; ${kept}`,
    failure.retryable ? `${failure.hint ? `${failure.hint}; ` : ''}${again}` : failure.hint,
  );
}

/** The command to run again, without --restart and with the values of secret flags replaced. */
function rerunCommand(argv: string[]): string {
  const args = argv.slice(2);
  const out: string[] = [];
  for (let k = 0; k < args.length; k++) {
    const arg = args[k] as string;
    if (arg === flagOf(FETCH_SETTINGS, 'restart')) continue;
    const [name, inline] = arg.startsWith('--') ? arg.split('=', 2) : [arg, undefined];
    const secret = arg.startsWith('--') && isSecretKey(keyOfFlag(name as string));
    if (secret && inline !== undefined) out.push(`${name}=***`);
    else if (secret) {
      out.push(arg, '***');
      k++;
    } else out.push(/\s/.test(arg) ? `'${arg.replaceAll("'", "'\\''")}'` : arg);
  }
  return `syncctl ${out.join(' ')}`;
}

async function runFetch(ctx: CliContext, opts: Record<string, unknown>): Promise<ExitCode> {
  const { fetch } = await import('../../stages/fetch.js');
  const { openFetch } = await import('../../stages/wiring.js');
  const { acquireLock } = await import('../../state/locks.js');
  const { stopOnSignals } = await import('../signals.js');
  const { startProgress } = await import('../spinner.js');
  const {
    source,
    publish,
    out,
    full,
    since: sinceText,
    until: untilText,
    resume,
    restart,
    concurrency,
    window: windowText,
    topic,
    rejects,
  } = ctx.resolve(FETCH_SETTINGS);
  const flag = (key: keyof typeof FETCH_SETTINGS & string) => flagOf(FETCH_SETTINGS, key);
  if (source === undefined) throw new UsageError(`${flag('source')} is required (crm or inventory)`);
  if (publish && out !== undefined) {
    throw new UsageError(`${flag('publish')} and ${flag('out')} cannot be used together`);
  }
  if (!publish && topic !== undefined) throw new UsageError(`${flag('topic')} needs ${flag('publish')}`);
  if (full && (sinceText !== undefined || untilText !== undefined)) {
    throw new UsageError(
      `${flag('full')} and ${flag('since')}/${flag('until')} cannot be used together (a backfill is already a full fetch of its range)`,
    );
  }
  if (untilText !== undefined && sinceText === undefined) {
    throw new UsageError(`${flag('until')} needs ${flag('since')}`);
  }
  if (resume && restart) {
    throw new UsageError(`${flag('resume')} and ${flag('restart')} cannot be used together`);
  }
  let mode: FetchMode;
  if (sinceText !== undefined) {
    const since = parseTime(flag('since'), sinceText);
    const until = untilText === undefined ? undefined : parseTime(flag('until'), untilText);
    if (until !== undefined && Date.parse(until) <= Date.parse(since)) {
      throw new UsageError(`${flag('until')} (${until}) must be after ${flag('since')} (${since})`);
    }
    mode = { kind: 'backfill', since, window: parseWindowSpec(windowText), ...(until ? { until } : {}) };
  } else {
    mode = { kind: full ? 'full' : 'incremental' };
  }

  const target: FetchTarget = publish
    ? { kind: 'kafka', kafka: ctx.kafkaOptions(), ...(topic !== undefined ? { topic } : {}) }
    : out !== undefined && out !== '-'
      ? { kind: 'file', path: out }
      : { kind: 'stdout' };
  const parts = await openFetch({
    source: source as Source,
    target,
    ...(rejects !== undefined ? { rejects } : {}),
    settings: ctx.settings,
    flags: opts,
    logger: ctx.logger,
    statePath: ctx.statePath(),
  });
  let lock: HeldLock;
  try {
    // Two fetches of one source would both move its checkpoint.
    lock = await acquireLock(parts.db, `fetch:${source}`, { runId: randomUUID(), logger: parts.logger });
  } catch (err) {
    await parts.close();
    throw err;
  }
  const dataOnStdout = target.kind === 'stdout';
  if (dataOnStdout) claimStdout();
  const stop = stopOnSignals((signal) =>
    ctx.logger.warn(`${signal}: finishing the page in flight, then stopping (again to abort at once)`),
  );
  // A spinner on the terminal would mix into NDJSON shown on the same terminal.
  const progress = startProgress(
    ctx.interactive && !(dataOnStdout && process.stdout.isTTY),
    `fetching ${source}…`,
  );
  let summary: FetchSummary;
  try {
    summary = await fetch({
      connector: parts.connector,
      db: parts.db,
      output: parts.output,
      mode,
      resumeOnly: resume,
      restart,
      rejectsPath: parts.rejectsPath,
      ...parts.limits,
      concurrency,
      signal: stop.signal,
      logger: parts.logger,
      onProgress: (p) => {
        const windows = p.windowsTotal > 1 ? `, windows ${p.windowsDone}/${p.windowsTotal}` : '';
        progress.update(`${source}: ${p.records} record(s) in ${p.pages} page(s)${windows}`, p.records);
      },
    });
  } finally {
    progress.stop();
    stop.dispose();
    await lock.release();
    await parts.close();
  }

  // Data owns stdout when the NDJSON goes there; the summary (text or JSON) then goes to stderr.
  const write = (text: string) => {
    const safe = redact(text);
    if (dataOnStdout) process.stderr.write(safe.endsWith('\n') ? safe : `${safe}\n`);
    else writeStdout(safe);
  };
  const failure = summary.error ? stopError(summary, summary.error, rerunCommand(process.argv)) : null;
  // With --json this summary is the one document on stdout: when the run failed, its `error` says
  // what the stderr lines say (no `{"error": …}` object follows it).
  if (ctx.json) write(JSON.stringify({ ...summary, error: failure }, null, 2));
  else if (!ctx.quiet || summary.status !== 'completed') write(describeSummary(summary));

  if (failure) throw failure;
  if (summary.rejects > 0) {
    ctx.logger.warn(`${summary.rejects} record(s) rejected; see ${summary.rejectsFile ?? parts.rejectsPath}`);
    return ExitCode.Partial;
  }
  return ExitCode.Ok;
}

export default function register(program: Command): void {
  const command = program
    .command('fetch')
    .description('page through the CRM or Inventory and write envelopes as NDJSON or publish them to Kafka');
  addSettingOptions(command, FETCH_SETTINGS);
  addSettingOptions(command, LIMIT_SETTINGS);
  addSettingOptions(command, CRM_SETTINGS);
  addSettingOptions(command, INVENTORY_SETTINGS);
  command.addHelpText('after', EXAMPLES).action(async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command & { exitCodeResult?: number };
    const { contextFrom } = await import('../context.js');
    const ctx = contextFrom(cmd);
    cmd.exitCodeResult = await runFetch(ctx, cmd.opts());
  });
}
