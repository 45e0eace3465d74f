/**
 * A source's mapping: how one raw record becomes an envelope's parts (id, modification time,
 * version, delete, product references, data). Compiled once per run; a record the mapping cannot
 * read becomes a reject that names the field, its expression and the error — never a crash.
 */
import { ConfigError } from '../errors.js';
import type { Operation } from '../records/envelope.js';
import { compileJsonata, type CompiledExpression } from './expression.js';
import { toData, toDeleted, toId, toProductIds, toTimestamp, toVersion, type Converted } from './values.js';

export const MAPPING_FIELDS = ['id', 'updatedAt', 'version', 'deleted', 'productIds', 'data'] as const;
export type MappingField = (typeof MAPPING_FIELDS)[number];

/** A mapping as configured: JSONata text per field; null or "" = none (for data: the record as received). */
export type MappingSpec = Partial<Record<MappingField, string | null>>;

/** Compiled fields; null = the field is not mapped. id and updatedAt are always mapped. */
export type CompiledFields = { id: CompiledExpression; updatedAt: CompiledExpression } & Partial<
  Record<Exclude<MappingField, 'id' | 'updatedAt'>, CompiledExpression | null>
>;

/** Why a record was rejected by its mapping, kept in the reject file. */
export interface MappingFailure {
  field: MappingField;
  expression: string;
  error: string;
}

export interface MappingReject {
  reason: string;
  raw: string;
  mapping?: MappingFailure;
}

/** One raw record as the mapping read it: the envelope's parts, or why it cannot become one. */
export type RecordReading =
  | {
      id: string;
      op: Operation;
      data: Record<string, unknown> | null;
      sourceUpdatedAt: string;
      sourceVersion: number | null;
      /** Only when the mapping maps productIds. */
      productIds?: string[];
    }
  | { reject: MappingReject };

export interface RecordMapperOptions {
  /** "record" or "product", in reject reasons. */
  noun: string;
  /** Whether a delete keeps the record's last data (Inventory) or carries none (CRM). */
  keepDataOnDelete: boolean;
  /** Turns a raw record into the JSON the expressions see (e.g. parsed SOAP values → JSON). */
  prepare?: (raw: unknown) => unknown;
}

/** Compiles the JSONata fields of a spec over shorthand (dot-path) defaults. */
export function compileMapping(spec: MappingSpec, shorthands: CompiledFields, where: string): CompiledFields {
  const out: CompiledFields = { ...shorthands };
  for (const field of MAPPING_FIELDS) {
    if (!Object.hasOwn(spec, field)) continue;
    const text = spec[field];
    if (text === null || text === undefined || text.trim() === '') {
      if (field === 'id' || field === 'updatedAt') {
        throw new ConfigError(`${where} field ${field} must not be empty`);
      }
      out[field] = null;
      continue;
    }
    out[field] = compileJsonata(text, `${where} field ${field}`);
  }
  return out;
}

type Outcome = { value: unknown } | { error: unknown };

function run(expression: CompiledExpression, record: unknown): Outcome | Promise<Outcome> {
  try {
    const value = expression.evaluate(record);
    if (value instanceof Promise) {
      return value.then(
        (v: unknown) => ({ value: v }),
        (error: unknown) => ({ error }),
      );
    }
    return { value };
  } catch (error) {
    return { error };
  }
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  const e = error as { message?: unknown; code?: unknown };
  if (e && typeof e === 'object' && typeof e.message === 'string') {
    return typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message;
  }
  return String(error);
}

const PHRASE: Record<MappingField, string> = {
  id: 'has no id in',
  updatedAt: 'has no valid modification time in',
  version: 'has no integer version in',
  deleted: 'has no true/false delete flag in',
  productIds: 'has unreadable product references in',
  data: 'has no data object in',
};

/** Maps raw records of one source; synchronous when every field is a dot path. */
export class RecordMapper {
  private readonly fields: [MappingField, CompiledExpression][];
  /** No JSONata anywhere: a record maps without a promise. */
  readonly sync: boolean;

  constructor(
    compiled: CompiledFields,
    private readonly options: RecordMapperOptions,
  ) {
    this.fields = MAPPING_FIELDS.flatMap((f) => {
      const e = compiled[f];
      return e ? [[f, e] as [MappingField, CompiledExpression]] : [];
    });
    this.sync = this.fields.every(([, e]) => e.kind === 'path');
  }

  /** Whether the mapping yields product references (then envelopes carry them). */
  get mapsProductIds(): boolean {
    return this.fields.some(([f]) => f === 'productIds');
  }

  /** Synchronous when `sync` (and whenever no expression needed JSONata's evaluator); await it otherwise. */
  map(raw: unknown): RecordReading | Promise<RecordReading> {
    const record = this.options.prepare ? this.options.prepare(raw) : raw;
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      return {
        reject: {
          reason: `${this.options.noun} is not an object with fields`,
          raw: JSON.stringify(record) ?? String(record),
        },
      };
    }
    const outcomes = this.fields.map(([, e]) => run(e, record));
    // Only what JSONata really evaluated is awaited: simple paths answer at once.
    if (!outcomes.some((o) => o instanceof Promise)) {
      return this.finish(record as Record<string, unknown>, outcomes as Outcome[]);
    }
    return Promise.all(outcomes).then((all) => this.finish(record as Record<string, unknown>, all));
  }

  /** Maps a page: records are evaluated concurrently, results come back in input order. */
  mapAll(records: readonly unknown[]): RecordReading[] | Promise<RecordReading[]> {
    const readings = records.map((r) => this.map(r));
    if (this.sync || !readings.some((r) => r instanceof Promise)) return readings as RecordReading[];
    return Promise.all(readings);
  }

  private finish(record: Record<string, unknown>, outcomes: Outcome[]): RecordReading {
    const { noun } = this.options;
    const values = new Map<MappingField, unknown>();
    let id: string | undefined;
    const reject = (field: MappingField, text: string, reason: string, error: string): RecordReading => ({
      reject: {
        reason: `${noun}${id === undefined ? '' : ` ${id}`}${reason.startsWith(':') ? '' : ' '}${reason}`,
        raw: JSON.stringify(record),
        mapping: { field, expression: text, error },
      },
    });
    for (let i = 0; i < this.fields.length; i++) {
      const [field, expression] = this.fields[i] as [MappingField, CompiledExpression];
      const outcome = outcomes[i] as Outcome;
      if ('error' in outcome) {
        const message = messageOf(outcome.error);
        return reject(
          field,
          expression.text,
          `: the ${field} expression "${expression.text}" failed: ${message}`,
          message,
        );
      }
      const converted = this.convert(field, expression, outcome.value);
      if (!converted.ok) {
        return reject(
          field,
          expression.text,
          `${PHRASE[field]} "${expression.text}" (${converted.problem})`,
          converted.problem,
        );
      }
      if (field === 'id') id = converted.value as string;
      values.set(field, converted.value);
    }
    const deleted = values.get('deleted') === true;
    const op: Operation = deleted ? 'delete' : 'upsert';
    const data = (values.get('data') as Record<string, unknown> | undefined) ?? record;
    const reading: RecordReading = {
      id: values.get('id') as string,
      op,
      data: deleted && !this.options.keepDataOnDelete ? null : data,
      sourceUpdatedAt: values.get('updatedAt') as string,
      sourceVersion: (values.get('version') as number | null | undefined) ?? null,
    };
    if (values.has('productIds')) reading.productIds = deleted ? [] : (values.get('productIds') as string[]);
    return reading;
  }

  private convert(field: MappingField, expression: CompiledExpression, value: unknown): Converted<unknown> {
    switch (field) {
      case 'id':
        return toId(value);
      case 'updatedAt':
        return toTimestamp(value);
      case 'version':
        // A dot path to a field that is sometimes not a number means "no version", as it always has.
        return toVersion(value, expression.kind === 'jsonata');
      case 'deleted':
        return toDeleted(value);
      case 'productIds':
        return toProductIds(value);
      case 'data':
        return toData(value);
    }
  }
}
