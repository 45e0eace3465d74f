import { join } from 'node:path';
import { makeEnvelope, type Envelope } from '../../src/records/envelope.js';
import { openDb, type Db } from '../../src/state/db.js';
import { MergeStore, type MergeItem } from '../../src/state/merge-store.js';
import { createPgSchema } from './postgres.js';
import { tempDir } from './temp.js';

export type StoreKind = 'sqlite' | 'postgres';

/** A state store of the given kind, private to the test; `close` drops it. */
export async function openTestStore(
  kind: StoreKind,
): Promise<{ db: Db; url: string; close(): Promise<void> }> {
  if (kind === 'sqlite') {
    const url = join(tempDir('syncctl-export-'), 'state.db');
    const db = await openDb(url);
    return { db, url, close: () => db.close() };
  }
  const schema = await createPgSchema('export_reader');
  const db = await openDb(schema.url);
  return {
    db,
    url: schema.url,
    close: async () => {
      await db.close();
      await schema.drop();
    },
  };
}

let offset = 0;
function item(envelope: Envelope | null, entity: 'customer' | 'product', id: string): MergeItem {
  return {
    entity,
    id,
    envelope,
    position: {
      topic: entity === 'customer' ? 'customer_data' : 'inventory_data',
      partition: 0,
      offset: String(offset++),
    },
  };
}

export function customerItem(id: string, data: Record<string, unknown>, version = 1): MergeItem {
  const envelope = makeEnvelope({
    source: 'crm',
    id,
    op: 'upsert',
    data: { id, ...data },
    sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString(),
    sourceVersion: version,
  });
  return item(envelope, 'customer', id);
}

export function productItem(id: string, data: Record<string, unknown>, version = 1): MergeItem {
  const envelope = makeEnvelope({
    source: 'inventory',
    id,
    op: 'upsert',
    data: { id, ...data },
    sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + version * 60_000).toISOString(),
    sourceVersion: version,
  });
  return item(envelope, 'product', id);
}

export function tombstoneItem(entity: 'customer' | 'product', id: string): MergeItem {
  return item(null, entity, id);
}

export const LONG_VALUE = 'x'.repeat(2500) + 'ü,"\n'.repeat(10) + 'y'.repeat(2460);

/**
 * Customers and products holding everything a CSV can get wrong: separators, quotes, line breaks,
 * unicode and right-to-left text, cells a spreadsheet would run, nulls, empty product lists,
 * 5000-character values, discontinued, deleted and unknown products, a deleted customer.
 */
export function trickyItems(): MergeItem[] {
  return [
    productItem('P1', { name: 'Mug, "large"', price: 12.5, discontinued: false }),
    productItem('P2', { name: '=HYPERLINK("http://evil","click")', price: -5, discontinued: true }),
    productItem('P3', { name: 'שלום עולם', price: 0, discontinued: false }),
    productItem('P4', { name: 'deleted later', price: 1 }),
    tombstoneItem('product', 'P4'),
    customerItem('C01', { name: 'Zoë García, Jr.', notes: null, productIds: ['P1', 'P2', 'P9'] }),
    customerItem('C02', { name: 'line one\nline two\r\nthree', notes: 'say "hi"', productIds: [] }),
    customerItem('C03', { name: 'مرحبا بالعالم', notes: '日本語 🎉', productIds: ['P3', 'P4'] }),
    customerItem('C04', { name: '=1+1', notes: '+SUM(A1)', tags: ['-5', '@cmd'], productIds: ['P1'] }),
    customerItem('C05', { name: '\tTabbed', notes: '\rreturn', productIds: [] }),
    customerItem('C06', { name: ' =trimmed', notes: '\n=lf', productIds: [] }),
    customerItem('C07', { name: LONG_VALUE, notes: '', productIds: ['P1', 'P1', 'P3'] }),
    customerItem('C08', { name: '-5', notes: '@user', productIds: [] }),
    customerItem('C09', { name: 'gone' }),
    tombstoneItem('customer', 'C09'),
    customerItem('C10', { name: 'Ｆｕｌｌ', notes: '＝1+1', productIds: ['P2'] }),
  ];
}

/** Opens a merge store on `db` and merges `items` (the way consume does). */
export async function seed(db: Db, items: MergeItem[]): Promise<void> {
  const store = await MergeStore.open(db);
  await store.mergeBatch(items);
}
