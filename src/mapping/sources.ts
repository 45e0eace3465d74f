/**
 * The two sources' mappings: their per-field settings as dot-path shorthands (what each has always
 * meant), with a configured JSONata mapping on top.
 */
import { compilePath, type CompiledExpression } from './expression.js';
import { RecordMapper, compileMapping, type CompiledFields, type MappingSpec } from './mapping.js';
import { readPath } from './path.js';

export interface CrmFieldPaths {
  id: string;
  updatedAt: string;
  /** '' = none. */
  version: string;
  /** A field that is `true` on deleted records; '' = none. */
  deleted: string;
  /** A field that is set (not null or "") on deleted records; '' = none. */
  deletedAt: string;
}

export interface InventoryFieldPaths {
  id: string;
  modifiedAt: string;
  version: string;
  /** A field that is true / 1 / "yes" on discontinued products; '' = none. */
  deleted: string;
}

function optionalPath(path: string): CompiledExpression | null {
  return path === '' ? null : compilePath(path);
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** CRM: a record is deleted when its flag is exactly true or its deletion time is set. */
export function crmMapper(paths: CrmFieldPaths, spec: MappingSpec): RecordMapper {
  const flags = [paths.deleted, paths.deletedAt].filter((p) => p !== '');
  const deleted: CompiledExpression | null =
    flags.length === 0
      ? null
      : {
          kind: 'path',
          text: flags.join(' / '),
          evaluate: (r) =>
            (paths.deleted !== '' && readPath(r, paths.deleted) === true) ||
            (paths.deletedAt !== '' && isSet(readPath(r, paths.deletedAt))),
        };
  const shorthands: CompiledFields = {
    id: compilePath(paths.id),
    updatedAt: compilePath(paths.updatedAt),
    version: optionalPath(paths.version),
    deleted,
  };
  return new RecordMapper(compileMapping(spec, shorthands, 'CRM mapping'), {
    noun: 'record',
    keepDataOnDelete: false,
  });
}

function isDeletedValue(value: unknown): boolean {
  return value === true || value === 1 || (typeof value === 'string' && /^(true|1|yes)$/i.test(value.trim()));
}

/** Inventory: a discontinued product keeps its last known fields, so Analytics shows it as discontinued. */
export function inventoryMapper(paths: InventoryFieldPaths, spec: MappingSpec): RecordMapper {
  const deleted: CompiledExpression | null =
    paths.deleted === ''
      ? null
      : { kind: 'path', text: paths.deleted, evaluate: (r) => isDeletedValue(readPath(r, paths.deleted)) };
  const shorthands: CompiledFields = {
    id: compilePath(paths.id),
    updatedAt: compilePath(paths.modifiedAt),
    version: optionalPath(paths.version),
    deleted,
  };
  return new RecordMapper(compileMapping(spec, shorthands, 'Inventory mapping'), {
    noun: 'product',
    keepDataOnDelete: true,
    prepare: soapToJson,
  });
}

/** Parsed SOAP values → JSON: dates as ISO text, XML namespace/xsi attributes dropped. */
export function soapToJson(value: unknown): unknown {
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : null;
  if (Array.isArray(value)) return value.map(soapToJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '$attributes' && v !== null && typeof v === 'object') {
        const kept = Object.entries(v).filter(([name]) => !/^(xmlns(:|$)|xsi:)/.test(name));
        if (kept.length > 0) out[key] = Object.fromEntries(kept);
        continue;
      }
      out[key] = soapToJson(v);
    }
    return out;
  }
  return value;
}

/**
 * The records at a dot path of a parsed SOAP result. Unlike readPath it tells "an empty list" (a
 * present element with nothing in it) from "no such element" (undefined).
 */
export function soapRecordsAt(result: unknown, path: string): unknown[] | undefined {
  let current: unknown = result;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (current === null || current === '') return [];
    if (typeof current !== 'object') return undefined;
    const rest = parts.slice(i).join('.');
    const obj = current as Record<string, unknown>;
    if (Object.hasOwn(obj, rest)) {
      current = obj[rest];
      break;
    }
    const part = parts[i] as string;
    if (!Object.hasOwn(obj, part)) {
      // An element with no children parses as an empty object: the list is simply empty.
      return Object.keys(obj).filter((k) => k !== '$attributes').length === 0 ? [] : undefined;
    }
    current = obj[part];
  }
  if (current === undefined) return undefined;
  if (current === null || current === '') return [];
  // A list with one element parses as that element when the schema does not say "unbounded".
  return Array.isArray(current) ? current : [current];
}
