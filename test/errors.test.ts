import { describe, expect, it } from 'vitest';
import {
  ExitCode,
  KafkaError,
  LockedError,
  SinkTransientError,
  SyncError,
  UsageError,
  toSyncError,
} from '../src/errors.js';

describe('errors', () => {
  it('give each class its code, retryability and exit code', () => {
    expect(new UsageError('bad flag')).toMatchObject({
      code: 'E_USAGE',
      retryable: false,
      exitCode: ExitCode.Usage,
    });
    expect(new LockedError('held')).toMatchObject({ code: 'E_LOCKED', exitCode: ExitCode.Locked });
    expect(new KafkaError('leader moved', true).exitCode).toBe(ExitCode.TempFailure);
    expect(new KafkaError('topic authorization failed', false).exitCode).toBe(ExitCode.Failure);
  });

  it('withContext keeps class, code and cause but tells a new message and hint', () => {
    const cause = new Error('ECONNRESET');
    const original = new SinkTransientError('analytics 503', { cause, hint: 'retry later' });
    const told = original.withContext('stopped at page 4: analytics 503', 'rerun with --resume');
    expect(told).toBeInstanceOf(SinkTransientError);
    expect(told).toMatchObject({
      code: original.code,
      retryable: original.retryable,
      exitCode: original.exitCode,
    });
    expect(told.message).toBe('stopped at page 4: analytics 503');
    expect(told.hint).toBe('rerun with --resume');
    expect(told.cause).toBe(cause);
    expect(original.message).toBe('analytics 503');
    expect(original.hint).toBe('retry later');
    expect(original.withContext('again').hint).toBe('retry later');
  });

  it('serialise for --json with the fields an operator scripts against', () => {
    expect(
      JSON.parse(JSON.stringify({ error: new UsageError('no --group', { hint: 'pass --group' }) })),
    ).toEqual({
      error: { code: 'E_USAGE', message: 'no --group', hint: 'pass --group', retryable: false, exitCode: 2 },
    });
  });

  it('toSyncError keeps SyncErrors and wraps anything else as an internal failure', () => {
    const known = new UsageError('x');
    expect(toSyncError(known)).toBe(known);
    const wrapped = toSyncError(new TypeError('undefined is not a function'));
    expect(wrapped).toBeInstanceOf(SyncError);
    expect(wrapped).toMatchObject({ code: 'E_INTERNAL', exitCode: ExitCode.Failure, retryable: false });
    expect(wrapped.message).toBe('undefined is not a function');
    expect(toSyncError('plain string').message).toBe('plain string');
  });
});
