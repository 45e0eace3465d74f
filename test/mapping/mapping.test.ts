import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { crmMapper, inventoryMapper, loadMappingSpec, type RecordReading } from '../../src/mapping/index.js';
import { tempDir } from '../helpers/temp.js';

const CRM_PATHS = {
  id: 'id',
  updatedAt: 'updatedAt',
  version: 'version',
  deleted: 'archived',
  deletedAt: 'deletedAt',
};
const INV_PATHS = { id: 'id', modifiedAt: 'modifiedAt', version: 'version', deleted: 'discontinued' };

async function read(mapper: ReturnType<typeof crmMapper>, record: unknown): Promise<RecordReading> {
  return mapper.map(record);
}

describe('dot-path shorthands', () => {
  it('map synchronously, with each source’s delete semantics', () => {
    const crm = crmMapper(CRM_PATHS, {});
    expect(crm.sync).toBe(true);
    const upsert = crm.map({ id: 'C1', updatedAt: '2024-01-01T00:00:00Z', version: 3, archived: false });
    expect(upsert).toMatchObject({ id: 'C1', op: 'upsert', sourceVersion: 3 });
    expect(upsert).not.toHaveProperty('productIds');
    expect(crm.map({ id: 'C1', updatedAt: '2024-01-01T00:00:00Z', deletedAt: '2024-01-01' })).toMatchObject({
      op: 'delete',
      data: null,
    });
    const inventory = inventoryMapper(INV_PATHS, {});
    expect(
      inventory.map({ id: 'P1', modifiedAt: '2024-01-01T00:00:00Z', discontinued: 'true' }),
    ).toMatchObject({
      op: 'delete',
      data: { id: 'P1' },
    });
  });
});

describe('JSONata mappings', () => {
  const salesforce = crmMapper(CRM_PATHS, {
    id: 'Id',
    updatedAt: 'LastModifiedDate',
    deleted: 'status in ["deleted", "archived"]',
    productIds: '$split(Interests__c, ";")',
  });

  it('read delimited references, enum deletes and +0000 offsets', async () => {
    expect(salesforce.sync).toBe(false);
    const record = {
      Id: '001A',
      LastModifiedDate: '2024-05-01T08:00:00.000+0000',
      status: 'active',
      Interests__c: 'P1;P2;P1',
    };
    expect(await read(salesforce, record)).toEqual({
      id: '001A',
      op: 'upsert',
      data: record,
      sourceUpdatedAt: '2024-05-01T08:00:00.000Z',
      sourceVersion: null,
      productIds: ['P1', 'P2'],
    });
    expect(await read(salesforce, { ...record, status: 'archived' })).toMatchObject({
      op: 'delete',
      data: null,
      productIds: [],
    });
  });

  it('read nested reference objects, composite ids and a reshaped data object', async () => {
    const mapper = crmMapper(CRM_PATHS, {
      id: 'region & "-" & number',
      productIds: 'products.sku',
      data: '{"name": name}',
    });
    const one = await read(mapper, {
      region: 'eu',
      number: 7,
      updatedAt: 1714550400000,
      products: [{ sku: 'P9' }],
      name: 'A',
    });
    expect(one).toMatchObject({
      id: 'eu-7',
      productIds: ['P9'],
      data: { name: 'A' },
      sourceUpdatedAt: '2024-05-01T08:00:00.000Z',
    });
  });

  it('a failing or ill-typed expression rejects the record with field, expression and error', async () => {
    const failing = await read(salesforce, {
      Id: 'X',
      LastModifiedDate: '2024-01-01T00:00:00Z',
      Interests__c: 5,
    });
    expect(failing).toMatchObject({
      reject: {
        reason: expect.stringMatching(
          /^record X: the productIds expression "\$split\(Interests__c, ";"\)" failed: /,
        ),
        mapping: { field: 'productIds', expression: '$split(Interests__c, ";")' },
      },
    });
    const illTyped = await read(crmMapper(CRM_PATHS, { deleted: 'status' }), {
      id: 'Y',
      updatedAt: '2024-01-01T00:00:00Z',
      status: 'active',
    });
    expect(illTyped).toMatchObject({
      reject: {
        reason:
          'record Y has no true/false delete flag in "status" (got "active"; write a comparison, e.g. status = "deleted")',
        mapping: { field: 'deleted', expression: 'status' },
      },
    });
  });

  it('a plain field name costs no asynchronous evaluation, unless an array is on the way', async () => {
    const mapper = crmMapper(CRM_PATHS, { id: 'Id', updatedAt: 'meta.changed', productIds: 'products.sku' });
    const plain = mapper.map({ Id: 'A', meta: { changed: '2024-01-01T00:00:00Z' } });
    expect(plain).not.toBeInstanceOf(Promise);
    expect(plain).toMatchObject({ id: 'A', productIds: [] });
    const nested = mapper.map({ Id: 'B', meta: { changed: 0 }, products: [{ sku: 'P1' }, { sku: 'P2' }] });
    expect(nested).toBeInstanceOf(Promise);
    expect(await nested).toMatchObject({ id: 'B', productIds: ['P1', 'P2'] });
  });

  it('maps a page concurrently and keeps the input order', async () => {
    const records = Array.from({ length: 50 }, (_, i) => ({
      Id: `C${i}`,
      LastModifiedDate: 1700000000 + i,
      status: 'active',
    }));
    const readings = await salesforce.mapAll(records);
    expect(readings.map((r) => ('id' in r ? r.id : 'reject'))).toEqual(records.map((r) => r.Id));
  });

  it('a syntax error stops the run before any record is read, naming the field', () => {
    expect(() => crmMapper(CRM_PATHS, { deleted: 'status = ' })).toThrow(ConfigError);
    expect(() => crmMapper(CRM_PATHS, { deleted: 'status = ' })).toThrow(
      /CRM mapping field deleted: "status = "/,
    );
  });
});

describe('loadMappingSpec', () => {
  it('reads a file or inline JSON, and refuses unknown fields and productIds for products', () => {
    const file = join(tempDir('syncctl-mapping-'), 'm.json');
    writeFileSync(file, JSON.stringify({ id: 'Id', version: null }));
    expect(loadMappingSpec(file, 'customer', '--crm-mapping')).toEqual({ id: 'Id', version: null });
    expect(loadMappingSpec('{"deleted": "x = 1"}', 'customer', '--crm-mapping')).toEqual({
      deleted: 'x = 1',
    });
    expect(loadMappingSpec('', 'customer', '--crm-mapping')).toEqual({});
    expect(() => loadMappingSpec('{"ids": "Id"}', 'customer', '--crm-mapping')).toThrow(
      /unknown field "ids"/,
    );
    expect(() => loadMappingSpec('{"productIds": "x"}', 'product', '--inventory-mapping')).toThrow(
      /--inventory-mapping: .*unknown field "productIds"/,
    );
    expect(() => loadMappingSpec(join(file, 'nope'), 'customer', '--crm-mapping')).toThrow(/cannot read/);
    expect(() => loadMappingSpec('{"id": 1}', 'customer', '--crm-mapping')).toThrow(
      /field id must be string,null/,
    );
  });
});
