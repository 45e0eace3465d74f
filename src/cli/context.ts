import type { Command } from 'commander';
import { ConfigError, ExitCode, UsageError, type SyncError } from '../errors.js';
import { randomUUID } from 'node:crypto';
import { createLogger, setActiveLogger, type LogFormat, type Logger, type LogLevel } from '../log.js';
import {
  GLOBAL_SETTINGS,
  KAFKA_SETTINGS,
  resolveSettings,
  type SettingGroup,
  type SettingValues,
  type SettingsSource,
} from '../settings/index.js';
import { parseBrokers, type KafkaOptions } from '../connectors/kafka.js';
import { kafkaSecurity } from '../connectors/kafka-security.js';
import { defaultStatePath } from '../state/db.js';
import { setJsonOutput, writeStdout } from './output.js';
import { renderTable, type TableStyle } from './table.js';
import { loadSettings, profilesPath } from '../settings/profiles.js';

export interface GlobalFlags {
  profile?: string;
}

/** What every command gets: resolved global settings, a logger, and where to print. */
export interface CliContext {
  json: boolean;
  quiet: boolean;
  logger: Logger;
  settings: SettingsSource;
  /** The resolved values of a group of settings: the command's flags > SYNCCTL_* > profile > defaults. */
  resolve<G extends SettingGroup>(group: G): SettingValues<G>;
  brokers(): string[];
  /** How to reach Kafka: the brokers, the logger, the connect timeout and TLS/SASL. */
  kafkaOptions(): KafkaOptions;
  /** The state store location (--state, or the default SQLite file). */
  statePath(): string;
  stdout(text: string, verbatim?: boolean): void;
  /** A table in the chosen output form (-o table|plain, --no-headers). */
  table(head: string[], rows: unknown[][]): string;
  /** Whether progress animation may be shown (a terminal, not CI, not --json/--quiet). */
  interactive: boolean;
}

/** One id per process: every log line of this invocation carries it. */
const RUN_ID = randomUUID();

const LEVELS: Record<string, LogLevel> = { error: 'quiet', warn: 'warn', info: 'info', debug: 'verbose' };

/** --log-level when given; else --quiet / --verbose. */
function logLevelOf(globals: SettingValues<typeof GLOBAL_SETTINGS>): LogLevel {
  if (globals.logLevel !== undefined) return LEVELS[globals.logLevel] ?? 'info';
  return globals.quiet ? 'quiet' : globals.verbose ? 'verbose' : 'info';
}

/** The command path below the program, e.g. "fetch" or "topics ensure". */
function stageOf(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function contextFrom(command: Command, options: ActionOptions = {}): CliContext {
  const flags = command.optsWithGlobals<GlobalFlags & Record<string, unknown>>();
  const settings = loadProfile(flags.profile, options);
  const globals = resolveSettings(GLOBAL_SETTINGS, settings, flags);
  // Resolved up front, so the SASL password is masked in every message even of commands that never connect.
  const kafkaSettings = resolveSettings(KAFKA_SETTINGS, settings, flags);
  const { quiet, verbose } = globals;
  const json = globals.json || globals.output === 'json';
  const tableStyle: TableStyle =
    globals.output === 'plain' || (globals.output === undefined && !process.stdout.isTTY) ? 'plain' : 'table';
  setJsonOutput(json);
  if (quiet && verbose) throw new UsageError('--quiet and --verbose cannot be used together');
  const logger = createLogger(logLevelOf(globals), undefined, {
    format: globals.logFormat as LogFormat,
    ...(globals.logFile !== undefined ? { file: globals.logFile } : {}),
    bindings: { runId: RUN_ID, stage: stageOf(command) },
  });
  setActiveLogger(logger);
  const brokers = () => {
    const list = parseBrokers(globals.brokers);
    if (list.length === 0) throw new UsageError('--brokers is empty');
    return list;
  };
  return {
    json,
    quiet,
    logger,
    settings,
    resolve: (group) => resolveSettings(group, settings, command.opts()),
    brokers,
    kafkaOptions: () => ({
      brokers: brokers(),
      logger,
      connectTimeoutMs: globals.connectTimeout,
      security: kafkaSecurity(kafkaSettings),
    }),
    statePath: () => globals.state ?? defaultStatePath(),
    stdout: writeStdout,
    table: (head, rows) => renderTable(head, rows, { style: tableStyle, headers: globals.headers }),
    interactive: Boolean(process.stderr.isTTY) && !process.env.CI && !json && !quiet,
  };
}

/** What a command's action returns: data for --json, lines for humans, and the exit code. */
export interface CommandResult {
  data: unknown;
  text: string;
  exitCode?: ExitCode;
  /** Data the operator asked for, printed as it is: a secret in it is the point (`config get`, `sandbox env`). */
  verbatim?: boolean;
  /** The run stopped on this error: the result is printed first, then main.ts reports it and exits with its code. */
  error?: SyncError;
}

export function report(ctx: CliContext, result: CommandResult): ExitCode {
  if (ctx.json) ctx.stdout(JSON.stringify(result.data, null, 2), result.verbatim);
  else if (!ctx.quiet && result.text !== '') ctx.stdout(result.text, result.verbatim);
  return result.exitCode ?? ExitCode.Ok;
}

export interface ActionOptions {
  /** For `config`, which creates profiles and fixes bad values: neither a missing profile nor a bad value is an error. */
  editsProfiles?: boolean;
  /** For commands that must work whatever the profiles file holds (sandbox status/down): it is only warned about. */
  profileOptional?: boolean;
}

function loadProfile(profileName: string | undefined, options: ActionOptions): SettingsSource {
  try {
    return loadSettings(profileName, process.env, {
      requireExisting: !options.editsProfiles,
      validate: !options.editsProfiles,
    });
  } catch (err) {
    if (!options.profileOptional || !(err instanceof ConfigError)) throw err;
    process.stderr.write(`syncctl: warning: ${err.message}; going on without the profile\n`);
    return {
      env: process.env,
      profile: {},
      profileName: profileName ?? 'default',
      profilePath: profilesPath(),
    };
  }
}

/** Wraps a command body: builds the context, runs it, prints the result, records the exit code. */
export function action<O>(
  body: (ctx: CliContext, opts: O, command: Command) => Promise<CommandResult>,
  options: ActionOptions = {},
) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command & { exitCodeResult?: number };
    const opts = command.opts<O & object>();
    const ctx = contextFrom(command, options);
    const result = await body(ctx, opts, command);
    command.exitCodeResult = report(ctx, result);
    if (result.error) throw result.error;
  };
}
