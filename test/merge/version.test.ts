import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  isUnversioned,
  parseUpdatedMs,
  type VersionStamp,
} from '../../src/merge/version.js';

const v = (sourceVersion: number | null, updatedMs: number | null, deleted = false): VersionStamp => ({
  sourceVersion,
  updatedMs,
  deleted,
});

describe('compareVersions', () => {
  it('decides by sourceVersion first, then update time, then delete over upsert', () => {
    expect(compareVersions(v(2, 100), v(1, 900))).toBe('newer');
    expect(compareVersions(v(1, 900), v(2, 100))).toBe('older');
    expect(compareVersions(v(2, 200), v(2, 100))).toBe('newer');
    expect(compareVersions(v(2, 100), v(2, 200))).toBe('older');
    expect(compareVersions(v(2, 100, true), v(2, 100))).toBe('newer');
    expect(compareVersions(v(2, 100), v(2, 100, true))).toBe('older');
    expect(compareVersions(v(2, 100), v(2, 100))).toBe('same');
  });

  it('ignores a dimension that one side lacks', () => {
    expect(compareVersions(v(null, 200), v(5, 100))).toBe('newer');
    expect(compareVersions(v(3, null), v(2, 900))).toBe('newer');
    expect(compareVersions(v(null, null), v(2, 900))).toBe('same');
  });

  it('parses update times and recognises unversioned records', () => {
    expect(parseUpdatedMs('2026-01-01T00:00:00.000Z')).toBe(Date.UTC(2026, 0, 1));
    expect(parseUpdatedMs('2026-01-01T01:00:00+01:00')).toBe(Date.UTC(2026, 0, 1));
    expect(parseUpdatedMs(null)).toBeNull();
    expect(parseUpdatedMs('yesterday')).toBeNull();
    expect(isUnversioned(v(null, null))).toBe(true);
    expect(isUnversioned(v(0, null))).toBe(false);
  });
});
