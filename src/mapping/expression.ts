/**
 * One mapping field, compiled once per run: a JSONata 2.x expression, or a dot path (today's
 * per-field flags) read by plain property access so the common case costs no JSONata evaluation.
 */
import { createRequire } from 'node:module';
import type jsonataType from 'jsonata';
import { ConfigError } from '../errors.js';
import { readPath } from './path.js';

export type ExpressionKind = 'path' | 'jsonata';

export interface CompiledExpression {
  kind: ExpressionKind;
  /** The text as configured, quoted in rejects and errors. */
  text: string;
  /** Synchronous for a path, usually a promise for JSONata (2.x evaluates asynchronously). */
  evaluate(record: unknown): unknown;
}

// Loaded on the first JSONata expression: a run of dot paths only never pays for loading it.
let jsonataModule: typeof jsonataType | undefined;
function jsonata(text: string): jsonataType.Expression {
  jsonataModule ??= createRequire(import.meta.url)('jsonata') as typeof jsonataType;
  return jsonataModule(text);
}

/** A dot path compiled to property access. */
export function compilePath(path: string): CompiledExpression {
  return { kind: 'path', text: path, evaluate: (record) => readPath(record, path) };
}

/** `a.b.c` of plain names: JSONata reads it as property access unless an array is on the way. */
const SIMPLE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Names JSONata reads as something else than a field. */
const RESERVED = new Set(['and', 'or', 'in', 'true', 'false', 'null']);

/**
 * Reads a simple path the way JSONata would, or says it cannot (undefined → ask JSONata): arrays
 * are mapped over and flattened by JSONata, so only objects may be on the way and at the end.
 */
function plainAccess(record: unknown, names: readonly string[]): { value: unknown } | undefined {
  let current = record;
  for (const name of names) {
    if (Array.isArray(current)) return undefined;
    if (current === null || typeof current !== 'object') return { value: undefined };
    current = (current as Record<string, unknown>)[name];
  }
  return Array.isArray(current) ? undefined : { value: current };
}

/** Compiles a JSONata expression; a syntax error names the setting and the position. */
export function compileJsonata(text: string, where: string): CompiledExpression {
  let expression: jsonataType.Expression;
  try {
    expression = jsonata(text);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    const at = typeof e.position === 'number' ? ` at character ${e.position}` : '';
    throw new ConfigError(
      `${where}: "${text}" is not a valid JSONata expression${at}: ${e.message ?? String(err)}`,
      {
        hint: 'see https://docs.jsonata.org for the syntax; try a mapping on one page with `syncctl probe --source crm|inventory`',
      },
    );
  }
  const names = text.trim().split('.');
  if (SIMPLE_PATH.test(text.trim()) && !names.some((n) => RESERVED.has(n))) {
    // The common `"id": "Id"` costs a property read, not an asynchronous evaluation.
    return {
      kind: 'jsonata',
      text,
      evaluate: (record) => {
        const hit = plainAccess(record, names);
        return hit ? hit.value : expression.evaluate(record);
      },
    };
  }
  return { kind: 'jsonata', text, evaluate: (record) => expression.evaluate(record) };
}
