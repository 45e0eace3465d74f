import type { Command } from 'commander';
import { ExitCode, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { loadSettings, pick, type SettingsSource } from '../settings.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, parseBrokers } from '../connectors/kafka.js';

export const DEFAULT_BROKERS = '127.0.0.1:9092';

export interface GlobalFlags {
  brokers?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  profile?: string;
  state?: string;
  connectTimeout?: number;
}

/** What every command gets: resolved global settings, a logger, and where to print. */
export interface CliContext {
  json: boolean;
  quiet: boolean;
  logger: Logger;
  settings: SettingsSource;
  brokers(): string[];
  /** How long connecting to Kafka may take before the broker counts as unreachable (exit 75). */
  connectTimeoutMs: number;
  stdout(text: string): void;
  /** Whether progress animation may be shown (a terminal, not CI, not --json/--quiet). */
  interactive: boolean;
}

export function contextFrom(command: Command, options: ActionOptions = {}): CliContext {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const settings = loadSettings(flags.profile, process.env, !options.profileMayBeMissing);
  const quiet = flags.quiet ?? false;
  const verbose = flags.verbose ?? false;
  if (quiet && verbose) throw new UsageError('--quiet and --verbose cannot be used together');
  const json = pick(settings, 'json', flags.json, false);
  const logger = createLogger(quiet ? 'quiet' : verbose ? 'verbose' : 'info');
  const connectTimeoutMs = pick(settings, 'connectTimeout', flags.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS);
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 1)
    throw new UsageError(`--connect-timeout must be an integer ≥ 1 (ms), got "${connectTimeoutMs}"`);
  return {
    json,
    quiet,
    logger,
    settings,
    brokers: () => {
      const list = parseBrokers(pick(settings, 'brokers', flags.brokers, DEFAULT_BROKERS));
      if (list.length === 0) throw new UsageError('--brokers is empty');
      return list;
    },
    connectTimeoutMs,
    stdout: (text) => {
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    interactive: Boolean(process.stderr.isTTY) && !process.env.CI && !json && !quiet,
  };
}

/** What a command's action returns: data for --json, lines for humans, and the exit code. */
export interface CommandResult {
  data: unknown;
  text: string;
  exitCode?: ExitCode;
}

export function report(ctx: CliContext, result: CommandResult): ExitCode {
  if (ctx.json) ctx.stdout(JSON.stringify(result.data, null, 2));
  else if (!ctx.quiet && result.text !== '') ctx.stdout(result.text);
  return result.exitCode ?? ExitCode.Ok;
}

export function parseIntFlag(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`${name} must be an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

export interface ActionOptions {
  /** For commands that create profiles: a --profile that does not exist yet is not an error. */
  profileMayBeMissing?: boolean;
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
  };
}
