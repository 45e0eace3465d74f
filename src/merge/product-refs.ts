import { UsageError } from '../errors.js';
import type { Envelope } from '../records/envelope.js';
import { CONSUME_SETTINGS } from '../settings/index.js';

/**
 * An envelope that carries its own product references (the source's mapping read them at fetch
 * time) is stored with them under this key, so they outlive the envelope; the key is taken out
 * again before the customer's data goes anywhere (withoutEnvelopeRefs).
 */
const ENVELOPE_REFS_KEY = '$syncctl.productIds';

/** The customer data to store: the envelope's data, plus its product references when it has them. */
export function withEnvelopeRefs(
  envelope: Pick<Envelope, 'data' | 'productIds'>,
): Record<string, unknown> | null {
  if (envelope.data === null || envelope.productIds === undefined) return envelope.data;
  return { ...envelope.data, [ENVELOPE_REFS_KEY]: envelope.productIds };
}

/** Stored data as the source sent it (without the references withEnvelopeRefs added). */
export function withoutEnvelopeRefs(data: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(data, ENVELOPE_REFS_KEY)) return data;
  const { [ENVELOPE_REFS_KEY]: _refs, ...rest } = data;
  return rest;
}

/**
 * Where a customer record lists the products it references, as a small path language so a CRM that
 * nests them (orders with line items) needs configuration, not code:
 *
 *   productIds                    an array of ids (the default)
 *   orders[].productId            one id per order
 *   orders[].items[].productId    ids inside nested arrays
 *
 * `name[]` walks into every element of an array; a trailing `[]` is optional on the last segment
 * (an array found there is flattened). Strings and numbers are ids; anything else is ignored.
 */
export const DEFAULT_PRODUCT_REF_PATH = CONSUME_SETTINGS.productRefPath.default;

interface Segment {
  name: string;
  each: boolean;
}

export function parseProductRefPath(path: string): Segment[] {
  const trimmed = path.trim();
  if (trimmed === '') throw new UsageError('--product-ref-path is empty');
  return trimmed.split('.').map((part) => {
    const m = /^([^[\]]+)(\[\])?$/.exec(part);
    if (!m?.[1]) {
      throw new UsageError(
        `--product-ref-path "${path}": "${part}" is not a field name (use e.g. orders[].productId)`,
      );
    }
    return { name: m[1], each: m[2] !== undefined };
  });
}

/**
 * The distinct product ids a customer references, in first-seen order: the envelope's own when it
 * carried them, otherwise read from the data along the --product-ref-path segments.
 */
export function extractProductIds(data: Record<string, unknown> | null, segments: Segment[]): string[] {
  if (data === null) return [];
  const carried = data[ENVELOPE_REFS_KEY];
  if (Array.isArray(carried)) return carried.filter((id): id is string => typeof id === 'string');
  let current: unknown[] = [data];
  for (const segment of segments) {
    const next: unknown[] = [];
    for (const value of current) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      const child = (value as Record<string, unknown>)[segment.name];
      if (segment.each || Array.isArray(child)) {
        if (Array.isArray(child)) next.push(...(child as unknown[]));
      } else if (child !== undefined) next.push(child);
    }
    current = next;
  }
  const ids = new Set<string>();
  for (const value of current) {
    if (typeof value === 'string' && value !== '') ids.add(value);
    else if (typeof value === 'number' && Number.isFinite(value)) ids.add(String(value));
  }
  return [...ids];
}
