// Seeds a SQLite state store with N customers and N products as consume leaves them, for the
// export-csv case: the tables are created by MergeStore itself, the rows written with one prepared
// statement per table (merging 1M envelopes through consume would take most of the bench's time).
import Database from 'better-sqlite3';
import { contentHashOf } from '../dist/src/records/envelope.js';
import { openDb } from '../dist/src/state/db.js';
import { MergeStore } from '../dist/src/state/merge-store.js';

const id = (prefix, i) => `${prefix}${String(i).padStart(7, '0')}`;

/** Customer i references up to three products; every 10th none. Returns the expected export row count. */
export async function seedExportState(path, size) {
  const db = await openDb(path);
  await MergeStore.open(db);
  await db.close();
  const sqlite = new Database(path);
  sqlite.pragma('synchronous = OFF');
  const now = new Date().toISOString();
  const insert = (table) =>
    sqlite.prepare(
      `INSERT INTO ${table} (id, deleted, data, source_version, source_updated_at, updated_ms, content_hash, merged_at)
       VALUES (?, 0, ?, 1, ?, ?, ?, ?)`,
    );
  const customers = insert('consume_customers');
  const products = insert('consume_products');
  const updatedAt = '2026-01-01T00:00:00.000Z';
  const ms = Date.parse(updatedAt);
  const chunk = 20_000;
  for (let start = 1; start <= size; start += chunk) {
    sqlite.transaction(() => {
      for (let i = start; i < Math.min(start + chunk, size + 1); i++) {
        const product = {
          id: id('P', i),
          name: `Product ${i}, "deluxe"`,
          price: (i % 997) / 10,
          discontinued: i % 50 === 0,
        };
        products.run(
          product.id,
          JSON.stringify(product),
          updatedAt,
          ms,
          contentHashOf('upsert', product),
          now,
        );
        const refs = i % 10 === 0 ? [] : [1, 2, 3].map((k) => id('P', ((i * 7 + k * 13) % size) + 1));
        const customer = {
          id: id('C', i),
          name: i % 100 === 0 ? `=HYPERLINK("x","${i}")` : `Customer ${i}`,
          email: `c${i}@example.com`,
          notes: i % 3 === 0 ? null : 'line one\nline two, with a comma',
          productIds: refs,
        };
        customers.run(
          customer.id,
          JSON.stringify(customer),
          updatedAt,
          ms,
          contentHashOf('upsert', customer),
          now,
        );
      }
    })();
  }
  sqlite.close();
  return size;
}
