import { canonicalJson, sha256Hex } from '../records/envelope.js';
import type { SinkRecord } from '../connectors/sink.js';

/**
 * The unified record: what Analytics receives for one customer (schemas/unified-record.schema.json,
 * docs/unified-record.md). Built from the merge tables only, so it is the same whichever instance
 * builds it and however often.
 */

export const UNIFIED_SCHEMA_VERSION = 1;

/** The latest merged state of one source entity, as the merge store keeps it. */
export interface MergedEntity {
  id: string;
  deleted: boolean;
  data: Record<string, unknown> | null;
  sourceVersion: number | null;
  sourceUpdatedAt: string | null;
  /** The envelope's content hash of the version merged. */
  contentHash: string;
}

export interface SourceVersionInfo {
  sourceVersion: number | null;
  sourceUpdatedAt: string | null;
  contentHash: string;
}

export interface UnifiedProduct {
  productId: string;
  /** Discontinued in Inventory: deleted there, or flagged `discontinued: true`. */
  discontinued: boolean;
  /** The product's fields from the latest inventory state (last known ones for a deleted product). */
  product: Record<string, unknown> | null;
}

export interface UnifiedRecord {
  schemaVersion: typeof UNIFIED_SCHEMA_VERSION;
  customerId: string;
  customer: Record<string, unknown>;
  products: UnifiedProduct[];
  unresolvedProductIds: string[];
  sourceVersions: {
    customer: SourceVersionInfo;
    products: Record<string, SourceVersionInfo>;
  };
  /** sha256 of the canonical JSON of every other field. */
  contentHash: string;
}

/** A unified record or the delete of one, ready for the sink, with its ledger hash. */
export interface UnifiedDelivery {
  sink: SinkRecord;
  /** Identifies this version of the customer's unified view (the ledger compares it). */
  hash: string;
}

function versionInfo(entity: MergedEntity): SourceVersionInfo {
  return {
    sourceVersion: entity.sourceVersion,
    sourceUpdatedAt: entity.sourceUpdatedAt,
    contentHash: entity.contentHash,
  };
}

function isDiscontinued(product: MergedEntity): boolean {
  return product.deleted || product.data?.discontinued === true;
}

/** The per-record idempotency key: the same unified-record version always gets the same key. */
export function unifiedRecordKey(customerId: string, hash: string): string {
  return sha256Hex(`unified\u0000${customerId}\u0000${hash}`);
}

/**
 * Builds what Analytics should hold for `customer`: an upsert of the unified record, or a delete
 * when the customer is deleted (or unknown). `products` holds the latest state of every product id
 * the customer references that the merge tables know.
 */
export function buildUnified(
  customerId: string,
  customer: MergedEntity | undefined,
  productIds: string[],
  products: Map<string, MergedEntity>,
): UnifiedDelivery {
  if (customer === undefined || customer.deleted || customer.data === null) {
    // The delete carries the version it deleted, so deleting, re-creating and deleting again are
    // distinct deliveries with distinct keys.
    const hash = `sha256:${sha256Hex(
      canonicalJson({ customerId, op: 'delete', customer: customer ? versionInfo(customer) : null }),
    )}`;
    return {
      hash,
      sink: { key: unifiedRecordKey(customerId, hash), customerId, op: 'delete', record: null },
    };
  }
  const resolved: UnifiedProduct[] = [];
  const unresolved: string[] = [];
  const productVersions: Record<string, SourceVersionInfo> = {};
  for (const productId of productIds) {
    const product = products.get(productId);
    if (product === undefined) {
      unresolved.push(productId);
      continue;
    }
    resolved.push({ productId, discontinued: isDiscontinued(product), product: product.data });
    productVersions[productId] = versionInfo(product);
  }
  const body: Omit<UnifiedRecord, 'contentHash'> = {
    schemaVersion: UNIFIED_SCHEMA_VERSION,
    customerId,
    customer: customer.data,
    products: resolved,
    unresolvedProductIds: unresolved,
    sourceVersions: { customer: versionInfo(customer), products: productVersions },
  };
  const hash = `sha256:${sha256Hex(canonicalJson(body))}`;
  const record: UnifiedRecord = { ...body, contentHash: hash };
  return {
    hash,
    sink: {
      key: unifiedRecordKey(customerId, hash),
      customerId,
      op: 'upsert',
      record: record as unknown as Record<string, unknown>,
    },
  };
}

/** A stable Idempotency-Key for a batch: a resend of the same records carries the same key. */
export function batchKeyOf(records: SinkRecord[]): string {
  return sha256Hex(records.map((r) => `${r.key}\u0000${r.customerId}\u0000${r.op}`).join('\u0001'));
}
