import { redact } from './redact.js';
/** Diagnostics go to stderr with a recognisable prefix; stdout is reserved for data and results. */
export type LogLevel = 'quiet' | 'info' | 'verbose';

export interface Logger {
  level: LogLevel;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export function createLogger(
  level: LogLevel = 'info',
  output: (s: string) => unknown = (s) => process.stderr.write(s),
): Logger {
  // Every diagnostic passes the same redaction as errors and summaries.
  const write = (s: string) => output(redact(s));
  return {
    level,
    error: (m) => write(`syncctl: error: ${m}\n`),
    warn: (m) => level !== 'quiet' && write(`syncctl: warning: ${m}\n`),
    info: (m) => level !== 'quiet' && write(`syncctl: ${m}\n`),
    debug: (m) => level === 'verbose' && write(`syncctl: debug: ${m}\n`),
  } as Logger;
}

export const silentLogger: Logger = createLogger('quiet', () => {});
