import { describe, expect, it } from 'vitest';
import {
  extractProductIds,
  parseProductRefPath,
  withEnvelopeRefs,
  withoutEnvelopeRefs,
} from '../../src/merge/product-refs.js';
import { UsageError } from '../../src/errors.js';

const ids = (path: string, data: Record<string, unknown> | null) =>
  extractProductIds(data, parseProductRefPath(path));

describe('product reference paths', () => {
  it('reads a plain array, de-duplicated in first-seen order', () => {
    expect(ids('productIds', { productIds: ['P2', 'P1', 'P2'] })).toEqual(['P2', 'P1']);
    expect(ids('productIds', { productIds: [] })).toEqual([]);
    expect(ids('productIds', {})).toEqual([]);
    expect(ids('productIds', null)).toEqual([]);
  });

  it('walks into arrays of objects and nested arrays', () => {
    const data = {
      orders: [
        { productId: 'P1', items: [{ productId: 'P3' }, { productId: 7 }] },
        { productId: 'P2', items: [] },
        { items: [{ productId: null }, { other: 'x' }] },
        'not an object',
      ],
    };
    expect(ids('orders[].productId', data)).toEqual(['P1', 'P2']);
    expect(ids('orders[].items[].productId', data)).toEqual(['P3', '7']);
    expect(ids('orders.productId', data)).toEqual(['P1', 'P2']);
  });

  it('rejects paths that are not field names', () => {
    expect(() => parseProductRefPath('')).toThrow(UsageError);
    expect(() => parseProductRefPath('orders..id')).toThrow(/not a field name/);
    expect(() => parseProductRefPath('orders[0].id')).toThrow(/not a field name/);
  });
});

describe('references an envelope carries', () => {
  it('win over --product-ref-path and never reach the data Analytics receives', () => {
    const data = { name: 'A', productIds: ['X'], Interests__c: 'P1;P2' };
    const stored = withEnvelopeRefs({ data, productIds: ['P1', 'P2'] });
    expect(extractProductIds(stored, parseProductRefPath('productIds'))).toEqual(['P1', 'P2']);
    expect(withoutEnvelopeRefs(stored!)).toEqual(data);
    // Without them the path decides, as before.
    expect(withEnvelopeRefs({ data })).toBe(data);
    expect(extractProductIds(data, parseProductRefPath('productIds'))).toEqual(['X']);
  });
});
