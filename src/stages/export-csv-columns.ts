/**
 * The columns `export-csv` can write, per kind of row, and how nested data becomes cells. The
 * default column lists and their order are part of the CLI contract (README, `export-csv --help`):
 * append new columns at the end, never reorder.
 *
 * Flattening rules:
 * - id lists (`productIds`, …) are `;`-joined, with a count column beside them;
 * - `customer`, `product`, `products`, `sourceVersions` and `data` hold the nested value as canonical
 *   JSON (keys sorted), so the CSV carries the whole view and reads back exactly;
 * - `customer.<path>` / `product.<path>` pick one field (dots walk into objects): a string as it is,
 *   a number or boolean as text, an object or array as JSON, null or missing as an empty cell.
 */
import { canonicalJson } from '../records/envelope.js';
import type { UnifiedProduct, UnifiedRecord } from '../merge/unified.js';
import type { StoredEntity } from '../state/export-reader.js';
import { UsageError } from '../errors.js';

export type Cell = string | number | boolean | null;
export type ExportEntity = 'unified' | 'customers' | 'products';

/** What a column reads from: a unified record, one (customer, product) pair of it, or a table row. */
export interface UnifiedSource {
  record: UnifiedRecord;
  changedAt: string;
}
export interface ExplodedSource extends UnifiedSource {
  /** The product of this row: resolved, unresolved (id only), or none for a customer without products. */
  product: { id: string; resolved: UnifiedProduct | null } | null;
}

type Getter<S> = (source: S) => Cell;
type Table<S> = Readonly<Record<string, Getter<S>>>;

const joinIds = (ids: string[]): string => ids.join(';');
const json = (value: unknown): string | null =>
  value === null || value === undefined ? null : canonicalJson(value);

const UNIFIED: Table<UnifiedSource> = {
  customerId: (s) => s.record.customerId,
  productIds: (s) => joinIds(s.record.products.map((p) => p.productId)),
  productCount: (s) => s.record.products.length,
  unresolvedProductIds: (s) => joinIds(s.record.unresolvedProductIds),
  discontinuedProductIds: (s) =>
    joinIds(s.record.products.filter((p) => p.discontinued).map((p) => p.productId)),
  customerSourceVersion: (s) => s.record.sourceVersions.customer.sourceVersion,
  customerSourceUpdatedAt: (s) => s.record.sourceVersions.customer.sourceUpdatedAt,
  changedAt: (s) => s.changedAt,
  contentHash: (s) => s.record.contentHash,
  customer: (s) => json(s.record.customer),
  products: (s) => json(s.record.products),
  sourceVersions: (s) => json(s.record.sourceVersions),
};

const EXPLODED: Table<ExplodedSource> = {
  customerId: (s) => s.record.customerId,
  productId: (s) => s.product?.id ?? null,
  productResolved: (s) => (s.product === null ? null : s.product.resolved !== null),
  productDiscontinued: (s) => s.product?.resolved?.discontinued ?? null,
  productSourceVersion: (s) =>
    s.product === null ? null : (s.record.sourceVersions.products[s.product.id]?.sourceVersion ?? null),
  product: (s) => json(s.product?.resolved?.product),
  customerSourceVersion: (s) => s.record.sourceVersions.customer.sourceVersion,
  customerSourceUpdatedAt: (s) => s.record.sourceVersions.customer.sourceUpdatedAt,
  changedAt: (s) => s.changedAt,
  contentHash: (s) => s.record.contentHash,
  customer: (s) => json(s.record.customer),
};

const entityTable = (idColumn: string): Table<StoredEntity> => ({
  [idColumn]: (e) => e.id,
  ...(idColumn === 'productId'
    ? {
        deleted: (e: StoredEntity) => e.deleted,
        discontinued: (e: StoredEntity) => e.deleted || e.data?.discontinued === true,
      }
    : {}),
  sourceVersion: (e) => e.sourceVersion,
  sourceUpdatedAt: (e) => e.sourceUpdatedAt,
  mergedAt: (e) => e.mergedAt,
  contentHash: (e) => e.contentHash,
  data: (e) => json(e.data),
});

const CUSTOMERS = entityTable('customerId');
const PRODUCTS = entityTable('productId');

/** Every fixed column of a kind of row, in default order. */
export const DEFAULT_COLUMNS = {
  unified: Object.keys(UNIFIED),
  exploded: Object.keys(EXPLODED),
  customers: Object.keys(CUSTOMERS),
  products: Object.keys(PRODUCTS),
} as const;

/** A field of nested data by a dotted path, as one cell. */
function pick(data: Record<string, unknown> | null | undefined, path: string[]): Cell {
  let value: unknown = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
    value = (value as Record<string, unknown>)[key];
  }
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return canonicalJson(value);
}

export interface ColumnSet<S> {
  names: string[];
  cells(source: S): Cell[];
}

function build<S>(
  table: Table<S>,
  names: string[],
  paths: Record<string, (source: S) => Record<string, unknown> | null | undefined>,
  what: string,
): ColumnSet<S> {
  const getters = names.map((name): Getter<S> => {
    const fixed = table[name];
    if (fixed) return fixed;
    const dot = name.indexOf('.');
    const from = dot > 0 ? paths[name.slice(0, dot)] : undefined;
    const path = name.slice(dot + 1).split('.');
    if (!from || path.some((p) => p === '')) {
      const prefixes = Object.keys(paths).map((p) => `${p}.<field>`);
      throw new UsageError(
        `--columns: unknown column "${name}" for ${what}; known: ${[...Object.keys(table), ...prefixes].join(', ')}`,
      );
    }
    return (source) => pick(from(source), path);
  });
  return { names, cells: (source) => getters.map((get) => get(source)) };
}

/** The columns to write: `requested` (from --columns) or the default list of that kind of row. */
export function unifiedColumns(requested?: string[]): ColumnSet<UnifiedSource> {
  return build(
    UNIFIED,
    requested ?? DEFAULT_COLUMNS.unified,
    { customer: (s) => s.record.customer },
    'the unified view',
  );
}

export function explodedColumns(requested?: string[]): ColumnSet<ExplodedSource> {
  return build(
    EXPLODED,
    requested ?? DEFAULT_COLUMNS.exploded,
    { customer: (s) => s.record.customer, product: (s) => s.product?.resolved?.product },
    'the unified view with --explode',
  );
}

export function entityColumns(
  entity: 'customers' | 'products',
  requested?: string[],
): ColumnSet<StoredEntity> {
  return entity === 'customers'
    ? build(CUSTOMERS, requested ?? DEFAULT_COLUMNS.customers, { customer: (e) => e.data }, 'customers')
    : build(PRODUCTS, requested ?? DEFAULT_COLUMNS.products, { product: (e) => e.data }, 'products');
}

/** One row per product the customer references (resolved in order, then unresolved), or one empty-product row. */
export function* explode(source: UnifiedSource): Generator<ExplodedSource> {
  const { record } = source;
  if (record.products.length === 0 && record.unresolvedProductIds.length === 0) {
    yield { ...source, product: null };
    return;
  }
  for (const p of record.products) yield { ...source, product: { id: p.productId, resolved: p } };
  for (const id of record.unresolvedProductIds) yield { ...source, product: { id, resolved: null } };
}

// A spreadsheet runs a cell as a formula when it starts with one of these, also in their full-width
// forms (Apple Numbers normalises them). Imports that trim cells first (several spreadsheet import
// dialogs and scripts do) turn " =1+1" or "\n=1+1" into a formula too, so leading whitespace is skipped.
const FORMULA_START = /^[\s\u00a0\u2000-\u200b\u3000\ufeff]*[=+\-@\uff1d\uff0b\uff0d\uff20]/u;

/**
 * Neutralises a text cell a spreadsheet would execute by prefixing `'` (shown as text, not run):
 * cells starting with = + - @ (or after leading whitespace), a tab or a carriage return.
 * csv-stringify's `escape_formulas` misses the leading-whitespace forms (" =1+1", "\n=1+1").
 */
export function escapeFormula(value: string): string {
  return FORMULA_START.test(value) || value.startsWith('\t') || value.startsWith('\r') ? `'${value}` : value;
}
