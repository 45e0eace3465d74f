import { describe, expect, it } from 'vitest';
import { toDeleted, toId, toProductIds, toTimestamp, toVersion } from '../../src/mapping/index.js';

const value = <T>(c: { ok: true; value: T } | { ok: false; problem: string }): T | string =>
  c.ok ? c.value : `problem: ${c.problem}`;

describe('toTimestamp', () => {
  it('reads ISO-8601 with any offset, including +0000 without a colon', () => {
    expect(value(toTimestamp('2024-03-01T10:00:00Z'))).toBe('2024-03-01T10:00:00.000Z');
    expect(value(toTimestamp('2024-03-01T12:00:00+02:00'))).toBe('2024-03-01T10:00:00.000Z');
    expect(value(toTimestamp('2024-03-01T10:00:00.250+0000'))).toBe('2024-03-01T10:00:00.250Z');
  });

  it('tells epoch seconds from epoch milliseconds by size, as numbers or digit strings', () => {
    expect(value(toTimestamp(1709287200))).toBe('2024-03-01T10:00:00.000Z');
    expect(value(toTimestamp(1709287200000))).toBe('2024-03-01T10:00:00.000Z');
    expect(value(toTimestamp('1709287200'))).toBe('2024-03-01T10:00:00.000Z');
    expect(value(toTimestamp('1709287200123'))).toBe('2024-03-01T10:00:00.123Z');
  });

  it('says what it got when a value is no time', () => {
    expect(value(toTimestamp('last tuesday'))).toMatch(/problem: got "last tuesday"/);
    expect(value(toTimestamp(undefined))).toMatch(/problem: got nothing/);
    expect(value(toTimestamp(true))).toMatch(/problem/);
  });
});

describe('other fields', () => {
  it('ids are non-empty strings or numbers', () => {
    expect(value(toId('C1'))).toBe('C1');
    expect(value(toId(42))).toBe('42');
    expect(value(toId('  '))).toMatch(/problem/);
    expect(value(toId({ a: 1 }))).toMatch(/problem/);
  });

  it('a version is an integer or none; only a strict field refuses other values', () => {
    expect(value(toVersion('7', true))).toBe(7);
    expect(value(toVersion(null, true))).toBeNull();
    expect(value(toVersion('v7', false))).toBeNull();
    expect(value(toVersion('v7', true))).toMatch(/problem/);
  });

  it('deleted must be a boolean: "active" is not taken as true', () => {
    expect(value(toDeleted(true))).toBe(true);
    expect(value(toDeleted(undefined))).toBe(false);
    expect(value(toDeleted('active'))).toMatch(/problem: got "active"; write a comparison/);
  });

  it('product references: distinct strings in first-seen order; one string is one id', () => {
    expect(value(toProductIds(['P2', 'P1', 'P2', 3, ' ']))).toEqual(['P2', 'P1', '3']);
    expect(value(toProductIds('P1'))).toEqual(['P1']);
    expect(value(toProductIds(undefined))).toEqual([]);
    expect(value(toProductIds([{ sku: 'P1' }]))).toMatch(/problem/);
  });
});
