/**
 * One mapping field, compiled once per run: a JSONata 2.x expression, or a dot path (today's
 * per-field flags) read by plain property access so the common case costs no JSONata evaluation.
 */
import jsonata from 'jsonata';
import { ConfigError } from '../errors.js';
import { readPath } from './path.js';

export type ExpressionKind = 'path' | 'jsonata';

export interface CompiledExpression {
  kind: ExpressionKind;
  /** The text as configured, quoted in rejects and errors. */
  text: string;
  /** Synchronous for a path, a promise for JSONata (2.x evaluates asynchronously). */
  evaluate(record: unknown): unknown;
}

/** A dot path compiled to property access. */
export function compilePath(path: string): CompiledExpression {
  return { kind: 'path', text: path, evaluate: (record) => readPath(record, path) };
}

/** Compiles a JSONata expression; a syntax error names the setting and the position. */
export function compileJsonata(text: string, where: string): CompiledExpression {
  let expression: jsonata.Expression;
  try {
    expression = jsonata(text);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    const at = typeof e.position === 'number' ? ` at character ${e.position}` : '';
    throw new ConfigError(
      `${where}: "${text}" is not a valid JSONata expression${at}: ${e.message ?? String(err)}`,
      {
        hint: 'see https://docs.jsonata.org for the syntax; test an expression with `syncctl fetch --limit`',
      },
    );
  }
  return { kind: 'jsonata', text, evaluate: (record) => expression.evaluate(record) };
}
