/**
 * Diagnostics go to stderr; stdout is reserved for data and results. The human view is the
 * `syncctl: …` lines operators read; `--log-format json` gives the same events as pino JSON lines a
 * log shipper can parse, and `--log-file` appends them as JSON to a file in either case. Every
 * message and field passes the same redaction as errors and summaries.
 */
import { createRequire } from 'node:module';
import type pinoType from 'pino';
import { UsageError } from './errors.js';
import { redact } from './redact.js';

/** quiet: errors only; verbose: debug detail (kafkajs included). */
export type LogLevel = 'quiet' | 'warn' | 'info' | 'verbose';
export type LogFormat = 'human' | 'json';
export type LogFields = Record<string, unknown>;

export interface Logger {
  level: LogLevel;
  format: LogFormat;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /** The same logger with fields carried by every line (JSON lines; the human view stays terse). */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  format?: LogFormat;
  /** Also append JSON lines to this file. */
  file?: string;
  /** Fields on every line, e.g. run id and stage. */
  bindings?: LogFields;
}

type Method = 'error' | 'warn' | 'info' | 'debug';

const PINO_LEVEL: Record<LogLevel, Method> = { quiet: 'error', warn: 'warn', info: 'info', verbose: 'debug' };
const RANK: Record<Method, number> = { debug: 20, info: 30, warn: 40, error: 50 };
const HUMAN_PREFIX: Record<Method, string> = {
  error: 'syncctl: error: ',
  warn: 'syncctl: warning: ',
  info: 'syncctl: ',
  debug: 'syncctl: debug: ',
};

/** Field values may hold URLs with passwords or tokens: redacted as text, like messages. */
function safeFields(fields: LogFields): LogFields {
  return JSON.parse(
    redact(JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.message : v))),
  ) as LogFields;
}

// Required on first use: `--help` and the default human format never need pino.
let pinoModule: typeof pinoType | undefined;
function pino(): typeof pinoType {
  pinoModule ??= createRequire(import.meta.url)('pino') as typeof pinoType;
  return pinoModule;
}

function openFile(path: string): pinoType.DestinationStream {
  try {
    // Synchronous: the last lines before process.exit must reach the file.
    return pino().destination({ dest: path, sync: true, append: true, mkdir: true });
  } catch (err) {
    throw new UsageError(`--log-file ${path}: ${(err as Error).message}`, {
      hint: 'give a writable file path (SYNCCTL_LOG_FILE)',
    });
  }
}

function build(
  level: LogLevel,
  format: LogFormat,
  human: ((s: string) => unknown) | undefined,
  sinks: pinoType.Logger[],
): Logger {
  const threshold = RANK[PINO_LEVEL[level]];
  const emit = (method: Method, message: string, fields: LogFields | undefined) => {
    if (RANK[method] < threshold) return;
    const msg = redact(message);
    if (human) human(`${HUMAN_PREFIX[method]}${msg}\n`);
    for (const sink of sinks) {
      if (fields) sink[method](safeFields(fields), msg);
      else sink[method](msg);
    }
  };
  return {
    level,
    format,
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    child: (bindings) =>
      build(
        level,
        format,
        human,
        sinks.map((s) => s.child(safeFields(bindings))),
      ),
  };
}

export function createLogger(
  level: LogLevel = 'info',
  output: (s: string) => unknown = (s) => process.stderr.write(s),
  options: LoggerOptions = {},
): Logger {
  const format = options.format ?? 'human';
  const pinoOptions = () => ({
    level: PINO_LEVEL[level],
    base: safeFields(options.bindings ?? {}),
    timestamp: pino().stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  });
  const sinks: pinoType.Logger[] = [];
  if (format === 'json') sinks.push(pino()(pinoOptions(), { write: (s: string) => output(s) }));
  if (options.file !== undefined) sinks.push(pino()(pinoOptions(), openFile(options.file)));
  return build(level, format, format === 'human' ? output : undefined, sinks);
}

export const silentLogger: Logger = createLogger('quiet', () => {});

/** The logger of the command running in this process, for the one place that reports its failure. */
let active: Logger | undefined;

export function setActiveLogger(logger: Logger | undefined): void {
  active = logger;
}

export function activeLogger(): Logger | undefined {
  return active;
}
