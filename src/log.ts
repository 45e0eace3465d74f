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
  write: (s: string) => unknown = (s) => process.stderr.write(s),
): Logger {
  return {
    level,
    error: (m) => write(`syncctl: error: ${m}\n`),
    warn: (m) => level !== 'quiet' && write(`syncctl: warning: ${m}\n`),
    info: (m) => level !== 'quiet' && write(`syncctl: ${m}\n`),
    debug: (m) => level === 'verbose' && write(`syncctl: debug: ${m}\n`),
  } as Logger;
}

export const silentLogger: Logger = createLogger('quiet', () => {});
