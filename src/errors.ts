/**
 * The one error module. Every failure syncctl reports is a SyncError with a stable code, a
 * `retryable` flag (would running again later help?) and the exit code the CLI maps it to.
 */

export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  Partial: 3,
  Locked: 4,
  TempFailure: 75,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const ERROR_CODES = [
  'E_USAGE',
  'E_CONFIG',
  'E_INPUT',
  'E_BROKER_UNREACHABLE',
  'E_KAFKA',
  'E_KAFKA_AUTH',
  'E_KAFKA_TLS',
  'E_TOPIC_CONFLICT',
  'E_SANDBOX',
  'E_SOURCE_PERMANENT',
  'E_SOURCE_TRANSIENT',
  'E_SOURCE_MALFORMED',
  'E_SINK_PERMANENT',
  'E_SINK_TRANSIENT',
  'E_TLS',
  'E_STATE',
  'E_STATE_UNAVAILABLE',
  'E_LOCKED',
  'E_INTERRUPTED',
  'E_LIMIT',
  'E_INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface SyncErrorOptions {
  cause?: unknown;
  /** A line telling the operator what to do about it. */
  hint?: string;
  details?: Record<string, unknown>;
}

export class SyncError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    retryable: boolean,
    exitCode: ExitCode,
    options: SyncErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.details = options.details;
  }

  /**
   * The same failure (class, code, retryability, exit code) told with more context, e.g. where a
   * run stopped and the command that continues it.
   */
  withContext(message: string, hint: string | undefined = this.hint): this {
    const copy = Object.create(Object.getPrototypeOf(this) as object) as this;
    Object.defineProperties(copy, Object.getOwnPropertyDescriptors(this));
    Object.defineProperty(copy, 'message', { value: message, writable: true, configurable: true });
    Object.defineProperty(copy, 'hint', {
      value: hint,
      writable: false,
      enumerable: true,
      configurable: true,
    });
    return copy;
  }

  /** How a summary printed with --json shows the error a stage stopped on. */
  toJSON(): {
    code: ErrorCode;
    message: string;
    hint: string | null;
    retryable: boolean;
    exitCode: ExitCode;
  } {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint ?? null,
      retryable: this.retryable,
      exitCode: this.exitCode,
    };
  }
}

/** Bad flags, unknown commands, invalid option values. */
export class UsageError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_USAGE', message, false, ExitCode.Usage, options);
  }
}

/** Configuration that cannot work (missing URL, unreadable profile, bad schema). */
export class ConfigError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_CONFIG', message, false, ExitCode.Usage, options);
  }
}

/** Input that cannot be read at all (missing file, unreadable stream). Bad single records are rejects, not this. */
export class InputError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_INPUT', message, false, ExitCode.Failure, options);
  }
}

export class BrokerUnreachableError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_BROKER_UNREACHABLE', message, true, ExitCode.TempFailure, options);
  }
}

export class KafkaError extends SyncError {
  constructor(message: string, retryable: boolean, options?: SyncErrorOptions) {
    super('E_KAFKA', message, retryable, retryable ? ExitCode.TempFailure : ExitCode.Failure, options);
  }
}

/**
 * The broker refused our SASL credentials. Retrying with the same ones cannot help, so it is a
 * configuration error (exit 2, like a wrong PostgreSQL password), never retried.
 */
export class KafkaAuthError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_KAFKA_AUTH', message, false, ExitCode.Usage, options);
  }
}

/**
 * The TLS handshake with a broker failed: its certificate is not trusted or does not name it, or it
 * refused ours. A configuration error (exit 2), never retried and never worked around.
 */
export class KafkaTlsError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_KAFKA_TLS', message, false, ExitCode.Usage, options);
  }
}

export class TopicConflictError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_TOPIC_CONFLICT', message, false, ExitCode.Failure, options);
  }
}

export class SandboxError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SANDBOX', message, false, ExitCode.Failure, options);
  }
}

/** The source refused in a way retrying cannot fix (401/403/404, broken WSDL). */
export class SourcePermanentError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SOURCE_PERMANENT', message, false, ExitCode.Failure, options);
  }
}

/** The source kept failing transiently after all retries; a later run may succeed. */
export class SourceTransientError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SOURCE_TRANSIENT', message, true, ExitCode.TempFailure, options);
  }
}

/** A page or body that cannot be parsed even after retries. */
export class SourceMalformedError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SOURCE_MALFORMED', message, true, ExitCode.TempFailure, options);
  }
}

export class SinkPermanentError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SINK_PERMANENT', message, false, ExitCode.Failure, options);
  }
}

export class SinkTransientError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_SINK_TRANSIENT', message, true, ExitCode.TempFailure, options);
  }
}

/**
 * An HTTPS connection refused on certificate grounds (untrusted, wrong host name, expired, our client
 * certificate refused): configuration to fix, so it exits like a config error and is never retried.
 */
export class TlsError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_TLS', message, false, ExitCode.Usage, options);
  }
}

export class StateError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_STATE', message, false, ExitCode.Failure, options);
  }
}

/** The state store could not be reached (refused, timed out, starting up): a later run may succeed. */
export class StateUnavailableError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_STATE_UNAVAILABLE', message, true, ExitCode.TempFailure, options);
  }
}

export class LockedError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_LOCKED', message, true, ExitCode.Locked, options);
  }
}

export class InterruptedError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_INTERRUPTED', message, true, ExitCode.TempFailure, options);
  }
}

/**
 * A configured size limit was reached (--*-max-response-bytes): a larger answer is cut while it
 * streams in, never buffered whole. Retrying fetches the same answer, so it is not retryable; the
 * hint names the setting to raise.
 */
export class LimitExceededError extends SyncError {
  constructor(message: string, options?: SyncErrorOptions) {
    super('E_LIMIT', message, false, ExitCode.Failure, options);
  }
}

export function isSyncError(err: unknown): err is SyncError {
  return err instanceof SyncError;
}

/** Wraps anything thrown into a SyncError so the CLI has one shape to report. */
export function toSyncError(err: unknown): SyncError {
  if (err instanceof SyncError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SyncError('E_INTERNAL', message, false, ExitCode.Failure, { cause: err });
}
