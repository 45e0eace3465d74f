import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { exportCsv, type ExportCsvOptions } from '../../src/stages/export-csv.js';
import { escapeFormula } from '../../src/stages/export-csv-columns.js';
import { readUnifiedView } from '../../src/state/export-reader.js';
import type { Db } from '../../src/state/db.js';
import {
  customerItem,
  LONG_VALUE,
  openTestStore,
  seed,
  trickyItems,
  type StoreKind,
} from '../helpers/export-data.js';
import { tempDir } from '../helpers/temp.js';

const GOLDEN = join(import.meta.dirname, 'golden');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function seededStore(kind: StoreKind): Promise<Db> {
  const s = await openTestStore(kind);
  cleanups.push(s.close);
  await seed(s.db, trickyItems());
  return s.db;
}

/** Runs the export into memory (as stdout would get it). */
async function exportToBuffer(options: Omit<ExportCsvOptions, 'stdout'>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await exportCsv({ ...options, stdout: out });
  return Buffer.concat(chunks);
}

/** An independent reader: Python's csv module. */
function pythonCsv(path: string): string[][] {
  const script =
    'import csv, json, sys\n' +
    "with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n" +
    '    json.dump(list(csv.reader(f)), sys.stdout)\n';
  const result = spawnSync('python3', ['-c', script, path], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[][];
}

/** Undoes the formula escape for comparison: a leading ' added before a cell that needed it. */
function unescapeFormula(cell: string): string {
  return cell.startsWith("'") && escapeFormula(cell.slice(1)) === cell ? cell.slice(1) : cell;
}

function checkGolden(name: string, actual: Buffer): void {
  const path = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) writeFileSync(path, actual);
  expect(actual.toString('utf8')).toBe(readFileSync(path, 'utf8'));
}

// Columns that do not depend on when the test ran (merge times do).
const STABLE_UNIFIED = [
  'customerId',
  'productIds',
  'productCount',
  'unresolvedProductIds',
  'discontinuedProductIds',
  'customerSourceVersion',
  'customerSourceUpdatedAt',
  'contentHash',
  'customer.name',
  'customer.notes',
  'customer.tags',
  'customer',
];

describe('export-csv golden files', () => {
  it('the unified view: commas, quotes, line breaks, unicode, RTL, formulas, nulls, empty lists, 5000 characters', async () => {
    const db = await seededStore('sqlite');
    const csv = await exportToBuffer({ db, entity: 'unified', columns: STABLE_UNIFIED });
    checkGolden('unified.csv', csv);
  });

  it('--explode: one row per customer-product pair, one empty-product row for a customer without products', async () => {
    const db = await seededStore('sqlite');
    const csv = await exportToBuffer({
      db,
      entity: 'unified',
      explode: true,
      columns: [
        'customerId',
        'productId',
        'productResolved',
        'productDiscontinued',
        'product.name',
        'product.price',
        'product',
      ],
    });
    checkGolden('exploded.csv', csv);
  });
});

describe.each<StoreKind>(['sqlite', 'postgres'])('export-csv on %s', (kind) => {
  it('reads back with Python csv into exactly the unified view', async () => {
    const db = await seededStore(kind);
    const dir = tempDir('syncctl-export-');
    const out = join(dir, 'view.csv');
    const summary = await exportCsv({ db, entity: 'unified', out, bom: true });
    expect(readFileSync(out).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    const [header, ...rows] = pythonCsv(out);
    expect(header).toEqual(summary.columns);
    const expected = [];
    for await (const row of readUnifiedView(db)) expected.push(row);
    expect(rows).toHaveLength(expected.length);
    expect(summary.rows).toBe(expected.length);
    const col = (row: string[], name: string) =>
      unescapeFormula(row[(header as string[]).indexOf(name)] as string);
    const rebuilt = rows.map((row) => ({
      schemaVersion: 1,
      customerId: col(row, 'customerId'),
      customer: JSON.parse(col(row, 'customer')) as unknown,
      products: JSON.parse(col(row, 'products')) as unknown,
      unresolvedProductIds:
        col(row, 'unresolvedProductIds') === '' ? [] : col(row, 'unresolvedProductIds').split(';'),
      sourceVersions: JSON.parse(col(row, 'sourceVersions')) as unknown,
      contentHash: col(row, 'contentHash'),
    }));
    expect(rebuilt).toEqual(expected.map((e) => e.record));
    for (const [i, row] of rows.entries()) {
      const record = expected[i]?.record;
      expect(col(row, 'productIds')).toBe(record?.products.map((p) => p.productId).join(';'));
      expect(Number(col(row, 'productCount'))).toBe(record?.products.length);
      expect(col(row, 'changedAt')).toBe(expected[i]?.changedAt);
    }
    const c07 = rebuilt.find((r) => r.customerId === 'C07');
    expect((c07?.customer as { name: string }).name).toBe(LONG_VALUE);
  });

  it('customers and products read back into the stored rows', async () => {
    const db = await seededStore(kind);
    const dir = tempDir('syncctl-export-');
    await exportCsv({
      db,
      entity: 'products',
      out: join(dir, 'p.csv'),
      columns: ['productId', 'deleted', 'discontinued', 'product.name', 'data'],
    });
    const [header, ...products] = pythonCsv(join(dir, 'p.csv'));
    expect(header).toEqual(['productId', 'deleted', 'discontinued', 'product.name', 'data']);
    expect(products.map((r) => r.slice(0, 4))).toEqual([
      ['P1', 'false', 'false', 'Mug, "large"'],
      ['P2', 'false', 'true', `'=HYPERLINK("http://evil","click")`],
      ['P3', 'false', 'false', 'שלום עולם'],
      ['P4', 'true', 'true', 'deleted later'],
    ]);
    expect(JSON.parse(products[1]?.[4] as string)).toEqual({
      id: 'P2',
      name: '=HYPERLINK("http://evil","click")',
      price: -5,
      discontinued: true,
    });
    await exportCsv({
      db,
      entity: 'customers',
      out: join(dir, 'c.csv'),
      columns: ['customerId', 'customer.productIds'],
    });
    const [, ...customers] = pythonCsv(join(dir, 'c.csv'));
    expect(customers.map((r) => r[0])).toEqual([
      'C01',
      'C02',
      'C03',
      'C04',
      'C05',
      'C06',
      'C07',
      'C08',
      'C10',
    ]);
    expect(customers[0]?.[1]).toBe('["P1","P2","P9"]');
  });

  it('--since last exports only what changed since the last completed export', async () => {
    const db = await seededStore(kind);
    // A row merged in the same millisecond an export starts is exported again next time (it may have
    // been merged after that export read it); this test wants the seed strictly before the export.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const first = await exportToBuffer({ db, entity: 'unified', since: 'last', columns: ['customerId'] });
    expect(first.toString().split('\r\n').filter(Boolean)).toHaveLength(10);
    const second = await exportToBuffer({ db, entity: 'unified', since: 'last', columns: ['customerId'] });
    expect(second.toString()).toBe('customerId\r\n');
    await seed(db, [customerItem('C03', { name: 'renamed', productIds: [] }, 2)]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const third = await exportToBuffer({
      db,
      entity: 'unified',
      since: 'last',
      columns: ['customerId', 'customer.name'],
    });
    expect(third.toString()).toBe('customerId,customer.name\r\nC03,renamed\r\n');
    // Another entity has its own checkpoint.
    const products = await exportToBuffer({ db, entity: 'products', since: 'last', columns: ['productId'] });
    expect(products.toString().split('\r\n').filter(Boolean)).toHaveLength(5);
  });
});

describe('formula escaping', () => {
  const cases: [string, string][] = [
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-5', "'-5"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', "'\rx"],
    ['＝1', "'＝1"],
    [' =1+1', "' =1+1"],
    ['\n=1+1', "'\n=1+1"],
    ['\u00a0+1', "'\u00a0+1"],
    ['a=b', 'a=b'],
    ['e-mail', 'e-mail'],
    ['', ''],
  ];
  it.each(cases)('%j → %j', (input, escaped) => {
    expect(escapeFormula(input)).toBe(escaped);
  });

  it("csv-stringify's escape_formulas misses cells our escaping catches", () => {
    const missed = cases
      .map(([input]) => input)
      .filter((input) => escapeFormula(input) !== input)
      .filter(
        (input) =>
          !stringify([[input]], { escape_formulas: true }).startsWith(`"'`) &&
          !stringify([[input]], { escape_formulas: true }).startsWith("'"),
      );
    expect(missed).toEqual([' =1+1', '\n=1+1', '\u00a0+1']);
  });

  it('numbers are data, not formulas: a negative price is written as it is; --no-formula-escape writes text as it is', async () => {
    const db = await seededStore('sqlite');
    const escaped = await exportToBuffer({
      db,
      entity: 'products',
      columns: ['productId', 'product.name', 'product.price'],
    });
    expect(escaped.toString()).toContain(`P2,"'=HYPERLINK(""http://evil"",""click"")",-5\r\n`);
    const raw = await exportToBuffer({
      db,
      entity: 'products',
      columns: ['productId', 'product.name'],
      formulaEscape: false,
    });
    expect(raw.toString()).toContain(`P2,"=HYPERLINK(""http://evil"",""click"")"\r\n`);
  });
});

describe('export-csv output', () => {
  it('--gzip writes the same CSV compressed', async () => {
    const db = await seededStore('sqlite');
    const plain = await exportToBuffer({ db, entity: 'unified', columns: STABLE_UNIFIED });
    const gz = await exportToBuffer({ db, entity: 'unified', columns: STABLE_UNIFIED, gzip: true });
    expect(gunzipSync(gz)).toEqual(plain);
  });

  it('--out is replaced only by a complete export: a failure leaves the old file and no temporary file', async () => {
    const db = await seededStore('sqlite');
    const dir = tempDir('syncctl-export-');
    const out = join(dir, 'view.csv');
    writeFileSync(out, 'previous export\r\n');
    let queries = 0;
    const failing: Db = {
      ...db,
      kind: db.kind,
      location: db.location,
      query: async (sql, params) => {
        // The second page: fail mid-export, after the first page's rows were written.
        if (/FROM consume_customers/.test(sql) && ++queries === 2) throw new Error('disk on fire');
        return db.query(sql, params);
      },
      run: (sql, params) => db.run(sql, params),
      transaction: (fn) => db.transaction(fn),
      exec: (sql) => db.exec(sql),
      close: () => db.close(),
    };
    await expect(
      exportCsv({ db: failing, entity: 'unified', out, since: 'last', pageSize: 4 }),
    ).rejects.toThrow(/disk on fire/);
    expect(readFileSync(out, 'utf8')).toBe('previous export\r\n');
    expect(readdirSync(dir)).toEqual(['view.csv']);
    // A failed export stores no checkpoint: --since last still exports everything.
    await exportCsv({ db, entity: 'unified', out, since: 'last' });
    expect(pythonCsv(out)).toHaveLength(10);
  });
});
