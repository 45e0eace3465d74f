import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { batchKeyOf, buildUnified, unifiedRecordKey, type MergedEntity } from '../../src/merge/unified.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

const entity = (
  id: string,
  data: Record<string, unknown> | null,
  extra: Partial<MergedEntity> = {},
): MergedEntity => ({
  id,
  deleted: false,
  data,
  sourceVersion: 1,
  sourceUpdatedAt: '2026-01-01T00:00:00.000Z',
  contentHash: `sha256:${'0'.repeat(64)}`,
  ...extra,
});

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const schema = JSON.parse(
  readFileSync(join(PACKAGE_ROOT, 'schemas', 'unified-record.schema.json'), 'utf8'),
) as object;
const validate = addFormats(new Ajv({ strict: true, allErrors: true })).compile(schema);

describe('buildUnified', () => {
  const products = new Map([
    ['P1', entity('P1', { name: 'Mug', discontinued: false })],
    ['P2', entity('P2', { name: 'Old mug', discontinued: true })],
    ['P3', entity('P3', { name: 'Gone' }, { deleted: true })],
  ]);

  it('resolves known products, lists unknown ones, marks discontinued ones, and validates against the schema', () => {
    const customer = entity('C1', { name: 'Zoë 🚀', productIds: ['P1', 'P2', 'P3', 'P9'] });
    const { sink, hash } = buildUnified('C1', customer, ['P1', 'P2', 'P3', 'P9'], products);
    expect(sink.op).toBe('upsert');
    expect(sink.key).toBe(unifiedRecordKey('C1', hash));
    const record = sink.record as Record<string, unknown>;
    expect(record).toMatchObject({
      schemaVersion: 1,
      customerId: 'C1',
      customer: { name: 'Zoë 🚀' },
      products: [
        { productId: 'P1', discontinued: false, product: { name: 'Mug' } },
        { productId: 'P2', discontinued: true },
        { productId: 'P3', discontinued: true, product: { name: 'Gone' } },
      ],
      unresolvedProductIds: ['P9'],
      contentHash: hash,
    });
    expect(Object.keys((record.sourceVersions as { products: object }).products)).toEqual(['P1', 'P2', 'P3']);
    expect(validate(record), JSON.stringify(validate.errors)).toBe(true);
  });

  it('changes hash and key when anything in the view changes, and only then', () => {
    const customer = entity('C1', { name: 'A', productIds: ['P1'] });
    const base = buildUnified('C1', customer, ['P1'], products);
    expect(buildUnified('C1', entity('C1', { productIds: ['P1'], name: 'A' }), ['P1'], products).hash).toBe(
      base.hash,
    );
    const changedProduct = new Map(products).set(
      'P1',
      entity('P1', { name: 'Mug', discontinued: false }, { sourceVersion: 2 }),
    );
    expect(buildUnified('C1', customer, ['P1'], changedProduct).hash).not.toBe(base.hash);
    expect(
      buildUnified('C1', entity('C1', { name: 'B', productIds: ['P1'] }), ['P1'], products).hash,
    ).not.toBe(base.hash);
  });

  it('turns deleted or unknown customers into deletes whose key depends on the deleted version', () => {
    const v1 = buildUnified('C1', entity('C1', { name: 'A' }, { deleted: true }), [], products);
    const v2 = buildUnified(
      'C1',
      entity('C1', { name: 'A' }, { deleted: true, sourceVersion: 2 }),
      [],
      products,
    );
    expect(v1.sink).toMatchObject({ op: 'delete', record: null, customerId: 'C1' });
    expect(v1.sink.key).not.toBe(v2.sink.key);
    expect(buildUnified('C1', undefined, [], products).sink.op).toBe('delete');
  });

  it('derives a batch key from the records, in order', () => {
    const a = buildUnified('C1', entity('C1', { n: 1 }), [], products).sink;
    const b = buildUnified('C2', entity('C2', { n: 2 }), [], products).sink;
    expect(batchKeyOf([a, b])).toBe(batchKeyOf([a, b]));
    expect(batchKeyOf([a, b])).not.toBe(batchKeyOf([b, a]));
    expect(batchKeyOf([a])).toMatch(/^[0-9a-f]{64}$/);
  });
});
