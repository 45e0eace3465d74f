import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as ajvModule from 'ajv';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { DEFAULT_TOPICS } from '../settings/index.js';
import { PACKAGE_ROOT } from '../paths.js';

export type Source = 'crm' | 'inventory';
export type Entity = 'customer' | 'product';
export type Operation = 'upsert' | 'delete';

export interface Envelope {
  schemaVersion: 1;
  source: Source;
  entity: Entity;
  id: string;
  op: Operation;
  sourceUpdatedAt: string | null;
  sourceVersion?: number | null;
  fetchedAt: string;
  contentHash: string;
  idempotencyKey: string;
  data: Record<string, unknown> | null;
  /**
   * Customers only, when the source's mapping maps product references: the product ids, canonical
   * (distinct strings). consume uses them instead of reading `data` with --product-ref-path.
   */
  productIds?: string[];
}

export const ENTITY_OF: Record<Source, Entity> = { crm: 'customer', inventory: 'product' };
export const TOPIC_OF: Record<Source, string> = {
  crm: DEFAULT_TOPICS.customers,
  inventory: DEFAULT_TOPICS.products,
};

/** JSON with object keys sorted at every depth, so equal content always hashes equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export function sha256Hex(text: string): string {
  // One-shot crypto.hash: no Hash object per call (measurably faster at 2–3 hashes per record).
  return hash('sha256', text, 'hex');
}

/** Product references count as content when the envelope carries them: a changed list is a new version. */
export function contentHashOf(
  op: Operation,
  data: Record<string, unknown> | null,
  productIds?: readonly string[],
): string {
  const content = productIds === undefined ? { op, data } : { op, data, productIds };
  return `sha256:${sha256Hex(canonicalJson(content))}`;
}

export function idempotencyKeyOf(entity: Entity, id: string, contentHash: string): string {
  return sha256Hex(`${entity}\u0000${id}\u0000${contentHash}`);
}

/** The Kafka message key: the entity id, so all versions of an entity share a partition. */
export function messageKeyOf(envelope: Pick<Envelope, 'id'>): string {
  return envelope.id;
}

export interface MakeEnvelopeInput {
  source: Source;
  id: string;
  op: Operation;
  data: Record<string, unknown> | null;
  sourceUpdatedAt: string | null;
  sourceVersion?: number | null;
  fetchedAt?: string;
  productIds?: string[];
}

export function makeEnvelope(input: MakeEnvelopeInput): Envelope {
  const entity = ENTITY_OF[input.source];
  const contentHash = contentHashOf(input.op, input.data, input.productIds);
  const envelope: Envelope = {
    schemaVersion: 1,
    source: input.source,
    entity,
    id: input.id,
    op: input.op,
    sourceUpdatedAt: input.sourceUpdatedAt,
    fetchedAt: input.fetchedAt ?? new Date().toISOString(),
    contentHash,
    idempotencyKey: idempotencyKeyOf(entity, input.id, contentHash),
    data: input.data,
  };
  if (input.sourceVersion !== undefined) envelope.sourceVersion = input.sourceVersion;
  if (input.productIds !== undefined) envelope.productIds = input.productIds;
  return envelope;
}

let compiled: ValidateFunction<Envelope> | undefined;

/** Compiled on first use: commands that never read an envelope do not pay for it at start-up. */
function envelopeValidator(): ValidateFunction<Envelope> {
  if (!compiled) {
    // Required here, not imported: commands that never validate an envelope never load ajv.
    const require = createRequire(import.meta.url);
    const ajv = new (require('ajv') as typeof ajvModule).Ajv({ allErrors: false, strict: false });
    (require('ajv-formats') as { default: (ajv: Ajv) => Ajv }).default(ajv);
    const envelopeSchema = JSON.parse(
      readFileSync(join(PACKAGE_ROOT, 'schemas', 'envelope.schema.json'), 'utf8'),
    ) as object;
    compiled = ajv.compile<Envelope>(envelopeSchema);
  }
  return compiled;
}

export type ValidationResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };
export type LineResult = { ok: true; envelope: Envelope; text: string } | { ok: false; reason: string };

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? 'envelope' : error.instancePath.slice(1).replaceAll('/', '.');
  if (error.keyword === 'required') return `missing required field "${String(error.params.missingProperty)}"`;
  if (error.keyword === 'not' && error.schemaPath.startsWith('#/allOf/1'))
    return 'an inventory (product) envelope must not carry productIds';
  if (error.keyword === 'additionalProperties')
    return `unknown field "${String(error.params.additionalProperty)}"`;
  return `${where} ${error.message ?? 'is invalid'}`;
}

/** Validates a parsed value as an envelope, including that its hash and key match its content. */
export function validateEnvelope(value: unknown): ValidationResult {
  // The schema's if/then rules hold vacuously for non-objects, so ajv would blame a `not` rule.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { ok: false, reason: `not an envelope: the line is ${kind}, not a JSON object` };
  }
  const validateSchema = envelopeValidator();
  if (!validateSchema(value)) {
    const first = validateSchema.errors?.[0];
    return { ok: false, reason: first ? describe(first) : 'not a valid envelope' };
  }
  const envelope = value;
  const expectedHash = contentHashOf(envelope.op, envelope.data, envelope.productIds);
  if (envelope.contentHash !== expectedHash) {
    return { ok: false, reason: `contentHash does not match the record's data (expected ${expectedHash})` };
  }
  const expectedKey = idempotencyKeyOf(envelope.entity, envelope.id, envelope.contentHash);
  if (envelope.idempotencyKey !== expectedKey) {
    return { ok: false, reason: 'idempotencyKey does not match entity, id and contentHash' };
  }
  return { ok: true, envelope };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses one NDJSON line (raw bytes) into an envelope, or says exactly why it cannot be one. */
export function parseEnvelopeLine(line: Buffer): LineResult {
  let text: string;
  try {
    text = strictUtf8.decode(line);
  } catch {
    return { ok: false, reason: 'invalid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `bad JSON: ${(err as Error).message}` };
  }
  const result = validateEnvelope(value);
  return result.ok ? { ...result, text } : result;
}
