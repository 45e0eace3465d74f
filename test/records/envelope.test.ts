import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  contentHashOf,
  idempotencyKeyOf,
  makeEnvelope,
  messageKeyOf,
  parseEnvelopeLine,
  validateEnvelope,
} from '../../src/records/envelope.js';

const base = {
  source: 'crm' as const,
  id: 'C0000001',
  op: 'upsert' as const,
  data: { name: 'Zoë 山田', tags: ['a'], nested: { b: 1, a: null } },
  sourceUpdatedAt: '2026-01-02T03:04:05.000Z',
};

describe('envelope', () => {
  it('derives entity, hash and idempotency key from content, not from fetch time', () => {
    const a = makeEnvelope({ ...base, fetchedAt: '2026-01-01T00:00:00.000Z' });
    const b = makeEnvelope({ ...base, fetchedAt: '2026-06-01T00:00:00.000Z' });
    expect(a.entity).toBe('customer');
    expect(a.contentHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a.idempotencyKey).toBe(b.idempotencyKey);
    expect(a.idempotencyKey).toBe(idempotencyKeyOf('customer', 'C0000001', a.contentHash));
  });

  it('carries mapped product references as content: validated, hashed, customers only', () => {
    const withRefs = makeEnvelope({ ...base, productIds: ['P1', 'P2'] });
    expect(withRefs.productIds).toEqual(['P1', 'P2']);
    expect(validateEnvelope(withRefs)).toMatchObject({ ok: true });
    expect(withRefs.contentHash).not.toBe(makeEnvelope(base).contentHash);
    expect(makeEnvelope(base)).not.toHaveProperty('productIds');
    expect(validateEnvelope({ ...withRefs, productIds: ['P1'] })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/contentHash does not match/),
    });
    const product = makeEnvelope({ ...base, source: 'inventory', productIds: ['P1'] });
    expect(validateEnvelope(product)).toEqual({
      ok: false,
      reason: 'an inventory (product) envelope must not carry productIds',
    });
  });

  it('says what a line that is not an object is, instead of blaming a schema rule', () => {
    expect(validateEnvelope([1, 2])).toEqual({
      ok: false,
      reason: 'not an envelope: the line is an array, not a JSON object',
    });
    expect(validateEnvelope(null)).toMatchObject({ reason: expect.stringMatching(/line is null/) });
    expect(validateEnvelope(42)).toMatchObject({ reason: expect.stringMatching(/line is a number/) });
    expect(validateEnvelope('C1')).toMatchObject({ reason: expect.stringMatching(/line is a string/) });
  });

  it('gives the same hash whatever the key order, and a different one for different data', () => {
    const reordered = { nested: { a: null, b: 1 }, tags: ['a'], name: 'Zoë 山田' };
    expect(contentHashOf('upsert', reordered)).toBe(contentHashOf('upsert', base.data));
    expect(contentHashOf('upsert', { ...base.data, name: 'other' })).not.toBe(
      contentHashOf('upsert', base.data),
    );
    expect(contentHashOf('delete', base.data)).not.toBe(contentHashOf('upsert', base.data));
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });

  it('keys messages by entity id', () => {
    expect(messageKeyOf(makeEnvelope(base))).toBe('C0000001');
  });

  it('separates entity and id in the key so ids cannot collide across entities', () => {
    const hash = contentHashOf('upsert', {});
    expect(idempotencyKeyOf('customer', 'X1', hash)).not.toBe(idempotencyKeyOf('product', 'X1', hash));
  });

  it('accepts what makeEnvelope builds, including deletes with null data', () => {
    expect(validateEnvelope(makeEnvelope(base)).ok).toBe(true);
    const del = makeEnvelope({
      source: 'inventory',
      id: 'P1',
      op: 'delete',
      data: null,
      sourceUpdatedAt: null,
    });
    expect(del.entity).toBe('product');
    expect(validateEnvelope(del).ok).toBe(true);
  });

  it.each([
    ['missing id', (e: Record<string, unknown>) => delete e.id, /missing required field "id"/],
    ['empty id', (e: Record<string, unknown>) => (e.id = ''), /id/],
    ['numeric id', (e: Record<string, unknown>) => (e.id = 5), /id must be string/],
    ['bad op', (e: Record<string, unknown>) => (e.op = 'merge'), /op/],
    ['bad timestamp', (e: Record<string, unknown>) => (e.sourceUpdatedAt = 'yesterday'), /sourceUpdatedAt/],
    ['source/entity mismatch', (e: Record<string, unknown>) => (e.entity = 'product'), /entity/],
    ['upsert without data', (e: Record<string, unknown>) => (e.data = null), /data/],
    ['unknown field', (e: Record<string, unknown>) => (e.extra = 1), /unknown field "extra"/],
    [
      'tampered data',
      (e: Record<string, unknown>) => (e.data = { name: 'changed' }),
      /contentHash does not match/,
    ],
    [
      'wrong key',
      (e: Record<string, unknown>) => (e.idempotencyKey = '0'.repeat(64)),
      /idempotencyKey does not match/,
    ],
  ])('rejects %s with a reason that names it', (_name, mutate, reason) => {
    const envelope = makeEnvelope(base) as unknown as Record<string, unknown>;
    mutate(envelope);
    const result = validateEnvelope(envelope);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('parses raw lines and reports bad JSON and invalid UTF-8', () => {
    const good = Buffer.from(JSON.stringify(makeEnvelope(base)));
    expect(parseEnvelopeLine(good).ok).toBe(true);
    const badJson = parseEnvelopeLine(Buffer.from('{"id": '));
    expect(badJson.ok || badJson.reason).toMatch(/^bad JSON/);
    const badUtf8 = parseEnvelopeLine(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(badUtf8.ok || badUtf8.reason).toBe('invalid UTF-8');
  });
});
