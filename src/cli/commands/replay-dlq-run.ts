import type { Command } from 'commander';
import Table from 'cli-table3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyticsConfigFromSettings, createAnalyticsSink } from '../../connectors/analytics-sink.js';
import { createKafka } from '../../connectors/kafka.js';
import type { AnalyticsSink } from '../../connectors/sink.js';
import { ExitCode, InputError, UsageError } from '../../errors.js';
import {
  CONSUME_SETTINGS,
  REPLAY_DLQ_SETTINGS,
  TOPIC_SETTINGS,
  type SettingValues,
} from '../../settings/index.js';
import { openDb } from '../../state/db.js';
import { replayDeadLetters, type ReplaySummary } from '../../stages/replay-dlq/replay.js';
import { parseOffsetRanges, parseTime, type LetterFilter } from '../../stages/replay-dlq/filter.js';
import { letterJson, type StoredLetter } from '../../stages/replay-dlq/letter.js';
import {
  countDeadLetters,
  listDeadLetters,
  showDeadLetter,
  type LetterCounts,
} from '../../stages/replay-dlq/list.js';
import { report, type CliContext } from '../context.js';
import { writeStdout } from '../output.js';
import { startProgress } from '../spinner.js';

type Flags = SettingValues<typeof REPLAY_DLQ_SETTINGS>;

export function filterOf(flags: Flags): LetterFilter {
  const filter: LetterFilter = {};
  if (flags.errorClass !== undefined) filter.errorClass = flags.errorClass;
  if (flags.error !== undefined) filter.error = flags.error;
  if (flags.sourceTopic !== undefined) filter.sourceTopic = flags.sourceTopic;
  if (flags.key !== undefined) filter.key = flags.key;
  if (flags.since !== undefined) filter.sinceMs = parseTime(flags.since, '--since');
  if (flags.until !== undefined) filter.untilMs = parseTime(flags.until, '--until');
  if (flags.minAttempts !== undefined) filter.minAttempts = flags.minAttempts;
  if (flags.offset !== undefined) filter.offsets = parseOffsetRanges(flags.offset);
  return filter;
}

function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function sourceOf(letter: StoredLetter): string {
  const { topic, partition, offset } = letter.source;
  if (topic === null) return '?';
  return `${topic}[${partition ?? '?'}]@${offset ?? '?'}`;
}

export function letterTable(letters: StoredLetter[]): string {
  const table = new Table({
    head: ['dlq', 'when', 'source', 'key', 'error', 'message', 'attempts'],
    style: { head: [], border: [] },
  });
  for (const l of letters) {
    const flags = [l.truncated ? 'truncated' : '', l.replayCount > 0 ? `replayed ${l.replayCount}×` : '']
      .filter(Boolean)
      .join(', ');
    table.push([
      `${l.partition}:${l.offset}`,
      l.deadLetteredAt.replace(/\.\d+Z$/, 'Z'),
      sourceOf(l),
      clip(l.source.key ?? l.customerId ?? '', 24),
      `${l.error.class}${l.error.code ? `\n${l.error.code}` : ''}`,
      clip(l.error.message, 60) + (flags ? `\n(${flags})` : ''),
      String(l.attempts),
    ]);
  }
  return table.toString();
}

function countsText(counts: LetterCounts): string {
  if (counts.total === 0) return `no dead letters in ${counts.topic} match`;
  const table = new Table({
    head: ['error class', 'code', 'count', 'kinds', 'first', 'last', 'example'],
    style: { head: [], border: [] },
  });
  for (const g of counts.byErrorClass) {
    table.push([
      g.errorClass,
      g.errorCode,
      String(g.count),
      g.kinds.join(', '),
      g.firstAt.replace(/\.\d+Z$/, 'Z'),
      g.lastAt.replace(/\.\d+Z$/, 'Z'),
      clip(g.example, 50),
    ]);
  }
  return `${table.toString()}\n${counts.total} letter(s) in ${counts.topic}`;
}

function showText(letter: StoredLetter): string {
  const lines = [
    `dead letter ${letter.partition}:${letter.offset} (${letter.kind}), dead-lettered ${letter.deadLetteredAt}`,
    `source      ${sourceOf(letter)} key ${letter.source.key ?? '(none)'}`,
    `error       ${letter.error.class} ${letter.error.code}: ${letter.error.message}`,
    `attempts    ${letter.attempts}${letter.replayCount > 0 ? `, replayed ${letter.replayCount} time(s) before` : ''}`,
  ];
  if (letter.customerId !== null)
    lines.push(`customer    ${letter.customerId} (record key ${letter.recordKey ?? '?'})`);
  if (letter.truncated) {
    lines.push(
      `truncated   the value is only the first ${letter.value?.length ?? 0} of ${letter.originalValueBytes ?? '?'} bytes: replay it with --from-file`,
    );
  }
  lines.push('headers:');
  for (const [name, value] of Object.entries(letter.headers)) lines.push(`  ${name}: ${value}`);
  lines.push(
    `key: ${letter.key === null ? '(null)' : letter.key.toString('utf8')}`,
    'value:',
    letter.value === null ? '(null)' : letter.value.toString('utf8'),
  );
  return lines.join('\n');
}

/** --from-file: corrected values by dead-letter position. */
export function readCorrections(path: string): Map<string, Buffer | null> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read --from-file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const out = new Map<string, Buffer | null>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let entry: { partition?: unknown; offset?: unknown; value?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch (err) {
      throw new InputError(`--from-file ${path} line ${i + 1}: not JSON (${(err as Error).message})`);
    }
    const partition = Number(entry.partition);
    const offset = String(entry.offset);
    if (!Number.isInteger(partition) || partition < 0 || !/^\d+$/.test(offset) || !('value' in entry)) {
      throw new InputError(
        `--from-file ${path} line ${i + 1}: needs "partition", "offset" (the dead letter's) and "value"`,
      );
    }
    const value = entry.value;
    out.set(
      `${partition}:${offset}`,
      value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    );
  });
  if (out.size === 0) throw new InputError(`--from-file ${path} names no letters`);
  return out;
}

/**
 * --edit: the selected letters as --from-file NDJSON in a private temp file, opened in the
 * operator's editor; what is left in the file when it closes is what gets replayed.
 */
async function editCorrections(
  ctx: CliContext,
  flags: Flags,
  filter: LetterFilter,
  topic: string,
): Promise<Map<string, Buffer | null>> {
  const kafkaOptions = ctx.kafkaOptions();
  const list = await listDeadLetters({
    kafka: createKafka(kafkaOptions),
    brokers: kafkaOptions.brokers,
    topic,
    filter,
    ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
    logger: ctx.logger,
  });
  if (list.letters.length === 0) throw new UsageError(`no dead letters in ${topic} match: nothing to edit`);
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  // Values may hold personal data: a private directory, removed afterwards.
  const dir = mkdtempSync(join(tmpdir(), 'syncctl-replay-'));
  try {
    const file = join(dir, 'letters.ndjson');
    const lines = list.letters.map((l) => {
      const { partition, offset, kind, source, error, customerId, truncated } = letterJson(l);
      const value = l.value === null ? null : l.value.toString('utf8');
      let parsed: unknown = value;
      try {
        if (value !== null) parsed = JSON.parse(value);
      } catch {
        // not JSON: edited as text
      }
      return JSON.stringify({ partition, offset, kind, source, error, customerId, truncated, value: parsed });
    });
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    // Through the shell: EDITOR often carries arguments ("code --wait").
    const result = spawnSync(`${editor} "${file}"`, { stdio: 'inherit', shell: true });
    if (result.status !== 0) {
      throw new UsageError(
        `the editor (${editor}) exited with ${result.status ?? result.signal}: nothing replayed`,
      );
    }
    return readCorrections(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ACTION_TEXT: Record<string, string> = {
  republish: 'republish to',
  remark: 'mark for delivery in',
  'fail-again': 'still invalid: back to',
  'skip-replayed': 'skip',
  refuse: 'refuse',
};

export function describeReplay(s: ReplaySummary): string {
  const lines = s.items.map((item) => {
    const what = `${item.dlq} ${item.kind}${item.customerId ? ` ${item.customerId}` : item.key ? ` key ${item.key}` : ''}${item.corrected ? ' (corrected)' : ''}`;
    const where = item.target ? ` ${item.target}` : '';
    return `${s.dryRun ? 'would ' : ''}${ACTION_TEXT[item.action] ?? item.action}${where}: ${what}${item.reason ? ` — ${item.reason}` : ''}`;
  });
  const head = s.dryRun ? 'dry run, nothing changed: ' : '';
  lines.push(
    `${head}${s.selected} letter(s) selected in ${s.deadLetterTopic}: replayed ${s.replayed} (${s.republished} republished, ${s.remarked} re-marked for delivery), failed again ${s.failedAgain}, skipped ${s.skipped} (${s.refused} refused)`,
  );
  if (s.delivery) {
    lines.push(
      `delivered ${s.delivery.delivered}, skipped ${s.delivery.skippedDuplicate} as duplicate, dead-lettered again ${s.delivery.deadLetteredRecords}, pending ${s.delivery.pending}`,
    );
  }
  return lines.join('\n');
}

async function replay(
  ctx: CliContext,
  flags: Flags,
  filter: LetterFilter,
  topics: SettingValues<typeof TOPIC_SETTINGS>,
  cmd: Command,
): Promise<ExitCode> {
  const consume = ctx.resolve(CONSUME_SETTINGS);
  if (flags.edit && flags.fromFile !== undefined)
    throw new UsageError('choose one of --edit and --from-file');
  const corrections = flags.edit
    ? await editCorrections(ctx, flags, filter, topics.dlqTopic)
    : flags.fromFile !== undefined
      ? readCorrections(flags.fromFile)
      : undefined;
  const kafkaOptions = ctx.kafkaOptions();
  let sink: AnalyticsSink | undefined;
  if (flags.deliver && !flags.dryRun)
    sink = createAnalyticsSink(analyticsConfigFromSettings(ctx.settings, cmd.opts()), ctx.logger);
  let summary: ReplaySummary;
  const progress = startProgress(ctx.interactive, `reading ${topics.dlqTopic}…`);
  try {
    const db = await openDb(ctx.statePath());
    try {
      summary = await replayDeadLetters({
        kafka: createKafka(kafkaOptions),
        brokers: kafkaOptions.brokers,
        db,
        deadLetterTopic: topics.dlqTopic,
        customerTopic: topics.customerTopic,
        productTopic: topics.productTopic,
        group: consume.group,
        filter,
        ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        dryRun: flags.dryRun,
        ...(corrections ? { corrections } : {}),
        ...(sink ? { deliver: { sink, batchSize: consume.batchSize } } : {}),
        productRefPath: consume.productRefPath,
        logger: ctx.logger,
        onProgress: (p) =>
          progress.update(
            p.phase === 'reading'
              ? `read ${p.read} letter(s), ${p.selected} selected`
              : `${p.phase === 'delivering' ? 'delivering; ' : ''}replayed ${p.replayed} of ${p.selected}${p.failedAgain > 0 ? `, ${p.failedAgain} failed again` : ''}`,
            p.phase === 'reading' ? p.read : undefined,
          ),
      });
    } finally {
      await db.close().catch(() => {});
    }
  } finally {
    progress.stop();
    await sink?.close().catch(() => {});
  }
  const code = report(ctx, {
    data: summary,
    text: describeReplay(summary),
    exitCode: summary.exitCode,
  });
  if (summary.error) throw summary.error;
  return code;
}

/** The body of `syncctl replay-dlq`, loaded only when the command runs (see ./replay-dlq.ts). */
export async function run(ctx: CliContext, cmd: Command): Promise<ExitCode> {
  const flags = ctx.resolve(REPLAY_DLQ_SETTINGS);
  const topics = ctx.resolve(TOPIC_SETTINGS);
  const filter = filterOf(flags);
  const kafkaOptions = ctx.kafkaOptions();
  const base = {
    kafka: createKafka(kafkaOptions),
    brokers: kafkaOptions.brokers,
    topic: topics.dlqTopic,
    logger: ctx.logger,
  };
  const modes = [flags.count, flags.show !== undefined, flags.replay || flags.dryRun].filter(Boolean).length;
  if (modes > 1) throw new UsageError('choose one of --count, --show and --replay/--dry-run');

  if (flags.replay || flags.dryRun) return replay(ctx, flags, filter, topics, cmd);
  if (flags.fromFile !== undefined || flags.deliver || flags.edit)
    throw new UsageError('--from-file, --edit and --deliver go with --replay');
  if (flags.show !== undefined) {
    const letter = await showDeadLetter({ ...base, partition: flags.partition, offset: flags.show });
    return report(ctx, { data: letterJson(letter, true), text: showText(letter) });
  }
  if (flags.count) {
    const counts = await countDeadLetters({
      ...base,
      filter,
      ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
    });
    return report(ctx, { data: counts, text: countsText(counts) });
  }
  const list = await listDeadLetters({
    ...base,
    filter,
    ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
  });
  if (ctx.json) {
    // One object per line, so the listing can be filtered with jq and edited into --from-file.
    if (list.letters.length > 0)
      writeStdout(list.letters.map((l) => JSON.stringify(letterJson(l))).join('\n'));
    return ExitCode.Ok;
  }
  if (list.letters.length === 0)
    return report(ctx, { data: null, text: `no dead letters in ${list.topic} match` });
  const more = list.limited ? `\nmore letters match: raise --limit or narrow the filters` : '';
  return report(ctx, {
    data: null,
    text: `${letterTable(list.letters)}\n${list.letters.length} letter(s) in ${list.topic}${more}`,
  });
}
