import type { Command } from 'commander';
import Table from 'cli-table3';
import { createKafka } from '../../connectors/kafka.js';
import { ExitCode, UsageError } from '../../errors.js';
import { REPLAY_DLQ_SETTINGS, TOPIC_SETTINGS, type SettingValues } from '../../settings/index.js';
import { parseOffsetRanges, parseTime, type LetterFilter } from '../../stages/replay-dlq/filter.js';
import { letterJson, type StoredLetter } from '../../stages/replay-dlq/letter.js';
import {
  countDeadLetters,
  listDeadLetters,
  showDeadLetter,
  type LetterCounts,
} from '../../stages/replay-dlq/list.js';
import { contextFrom, report, type CliContext } from '../context.js';
import { addSettingOptions } from '../options.js';
import { writeStdout } from '../output.js';

const EXAMPLES = `
Reading never commits anything: a private, throw-away consumer group reads the dead-letter topic
to the end offsets seen at start. Letters are named by their dead-letter partition and offset.

Examples:
  $ syncctl replay-dlq                                   # every letter, as a table
  $ syncctl replay-dlq --count                           # how many per error class
  $ syncctl replay-dlq --error-class InvalidEnvelopeError --since 2026-12-01 --json > letters.ndjson
  $ syncctl replay-dlq --show 42 --partition 0           # one letter whole: headers and value`;

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

async function run(ctx: CliContext): Promise<ExitCode> {
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

export default function register(program: Command): void {
  const command = program
    .command('replay-dlq')
    .description('list, count, show and replay dead-lettered messages and records');
  addSettingOptions(command, REPLAY_DLQ_SETTINGS);
  addSettingOptions(command, TOPIC_SETTINGS);
  command.addHelpText('after', EXAMPLES).action(async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command & { exitCodeResult?: number };
    const ctx = contextFrom(cmd);
    cmd.exitCodeResult = await run(ctx);
  });
}
