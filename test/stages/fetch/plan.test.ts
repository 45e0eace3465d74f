import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import {
  backfillRangeName,
  backfillWindowName,
  clampBelow,
  maxTime,
  parseTime,
  parseWindowSpec,
  splitWindows,
} from '../../../src/stages/fetch/plan.js';

describe('parseTime', () => {
  it('reads dates and offset-less date-times as UTC', () => {
    expect(parseTime('--since', '2024-05-01')).toBe('2024-05-01T00:00:00.000Z');
    expect(parseTime('--since', '2024-05-01T12:30')).toBe('2024-05-01T12:30:00.000Z');
    expect(parseTime('--since', '2024-05-01 12:30:15')).toBe('2024-05-01T12:30:15.000Z');
    expect(parseTime('--since', '2024-05-01T12:30:00+02:00')).toBe('2024-05-01T10:30:00.000Z');
  });

  it('rejects what is not a date, naming the flag', () => {
    expect(() => parseTime('--until', 'yesterday')).toThrow(UsageError);
    expect(() => parseTime('--until', 'yesterday')).toThrow(/--until/);
    expect(() => parseTime('--since', '2024-13-45')).toThrow(/--since/);
  });
});

describe('parseWindowSpec', () => {
  it('accepts durations and counts', () => {
    expect(parseWindowSpec('1d')).toEqual({ kind: 'duration', ms: 86_400_000, text: '1d' });
    expect(parseWindowSpec('30m')).toMatchObject({ kind: 'duration', ms: 1_800_000 });
    expect(parseWindowSpec('1.5h')).toMatchObject({ kind: 'duration', ms: 5_400_000 });
    expect(parseWindowSpec('12')).toEqual({ kind: 'count', count: 12 });
  });

  it('rejects nonsense with a usage error', () => {
    for (const bad of ['', 'day', '0', '1y', '-1d', '10ms'])
      expect(() => parseWindowSpec(bad)).toThrow(UsageError);
  });
});

describe('splitWindows', () => {
  it('cuts a range into contiguous windows that cover it exactly', () => {
    const windows = splitWindows(
      '2024-01-01T00:00:00.000Z',
      '2024-01-03T12:00:00.000Z',
      parseWindowSpec('1d'),
    );
    expect(windows).toEqual([
      { since: '2024-01-01T00:00:00.000Z', until: '2024-01-02T00:00:00.000Z' },
      { since: '2024-01-02T00:00:00.000Z', until: '2024-01-03T00:00:00.000Z' },
      { since: '2024-01-03T00:00:00.000Z', until: '2024-01-03T12:00:00.000Z' },
    ]);
  });

  it('splits into a given number of windows', () => {
    const windows = splitWindows(
      '2024-01-01T00:00:00.000Z',
      '2024-01-01T01:00:00.000Z',
      parseWindowSpec('4'),
    );
    expect(windows).toHaveLength(4);
    expect(windows[0]?.since).toBe('2024-01-01T00:00:00.000Z');
    expect(windows[3]?.until).toBe('2024-01-01T01:00:00.000Z');
    for (let i = 1; i < windows.length; i++) expect(windows[i]?.since).toBe(windows[i - 1]?.until);
  });

  it('refuses an empty or absurdly fine range', () => {
    expect(() =>
      splitWindows('2024-01-02T00:00:00.000Z', '2024-01-01T00:00:00.000Z', parseWindowSpec('1d')),
    ).toThrow(UsageError);
    expect(() =>
      splitWindows('2000-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', parseWindowSpec('1m')),
    ).toThrow(/windows/);
  });
});

describe('time helpers', () => {
  it('compares source times as instants, not strings', () => {
    expect(maxTime('2024-01-01T10:00:00Z', '2024-01-01T09:00:00.500Z')).toBe('2024-01-01T10:00:00Z');
    expect(maxTime('2024-01-01T10:00:00+02:00', '2024-01-01T09:00:00Z')).toBe('2024-01-01T09:00:00Z');
    expect(maxTime(null, '2024-01-01T00:00:00Z')).toBe('2024-01-01T00:00:00Z');
    expect(maxTime(undefined, null)).toBeNull();
  });

  it('never lets a high-water mark pass the end of its window', () => {
    expect(clampBelow('2024-02-01T00:00:00Z', '2024-01-01T00:00:00.000Z')).toBe('2024-01-01T00:00:00.000Z');
    expect(clampBelow('2023-12-01T00:00:00Z', '2024-01-01T00:00:00.000Z')).toBe('2023-12-01T00:00:00Z');
    expect(clampBelow('2023-12-01T00:00:00Z', undefined)).toBe('2023-12-01T00:00:00Z');
  });

  it('names window checkpoints under their range', () => {
    const range = backfillRangeName('crm', '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z');
    expect(range).toBe('fetch:crm:backfill:2024-01-01T00:00:00.000Z/2024-02-01T00:00:00.000Z');
    expect(
      backfillWindowName(
        'crm',
        '2024-01-01T00:00:00.000Z',
        '2024-02-01T00:00:00.000Z',
        '2024-01-08T00:00:00.000Z',
      ),
    ).toBe(`${range}:2024-01-08T00:00:00.000Z`);
  });
});
