/**
 * What a mapping field must yield, and how a value becomes it. Each converter returns the value or
 * what it got instead; the mapping turns that into a reject naming the field and its expression.
 */

export type Converted<T> = { ok: true; value: T } | { ok: false; problem: string };

const ok = <T>(value: T): Converted<T> => ({ ok: true, value });
const bad = (problem: string): Converted<never> => ({ ok: false, problem });

/** Epoch values below this are seconds, from it on milliseconds: 1e11 s is the year 5138, 1e11 ms is March 1973. */
export const EPOCH_MS_FROM = 1e11;

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

export function toId(value: unknown): Converted<string> {
  if (typeof value === 'string' && value.trim() !== '') return ok(value);
  if (typeof value === 'number' && Number.isFinite(value)) return ok(String(value));
  return bad(`got ${show(value)}; an id is a non-empty string or a number`);
}

/**
 * A modification time as ISO-8601 UTC. Accepts ISO-8601 with any offset (`Z`, `+02:00`, `+0000`),
 * epoch seconds and epoch milliseconds as numbers or digit strings (told apart by EPOCH_MS_FROM).
 */
export function toTimestamp(value: unknown): Converted<string> {
  let ms = Number.NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = epochMs(value);
  else if (typeof value === 'string' && value.trim() !== '') {
    const text = value.trim();
    ms = /^-?\d+(\.\d+)?$/.test(text) ? epochMs(Number(text)) : Date.parse(text);
  }
  if (!Number.isFinite(ms)) {
    return bad(`got ${show(value)}; expected ISO-8601, epoch seconds or epoch milliseconds`);
  }
  return ok(new Date(ms).toISOString());
}

function epochMs(n: number): number {
  if (!Number.isFinite(n)) return Number.NaN;
  return Math.abs(n) < EPOCH_MS_FROM ? n * 1000 : n;
}

/** An integer version, or null when there is none; `strict` refuses a value that is not one. */
export function toVersion(value: unknown, strict: boolean): Converted<number | null> {
  if (value === undefined || value === null || value === '') return ok(null);
  const n = typeof value === 'number' || typeof value === 'string' ? Number(value) : Number.NaN;
  if (Number.isSafeInteger(n)) return ok(n);
  return strict ? bad(`got ${show(value)}`) : ok(null);
}

/** Nothing means "not deleted"; anything else must be a boolean, so `"active"` is never taken as true. */
export function toDeleted(value: unknown): Converted<boolean> {
  if (value === undefined || value === null) return ok(false);
  if (typeof value === 'boolean') return ok(value);
  return bad(`got ${show(value)}; write a comparison, e.g. status = "deleted"`);
}

/**
 * Product references as distinct strings in first-seen order. A single string is one id (JSONata
 * unwraps one-element results); nothing is no references.
 */
export function toProductIds(value: unknown): Converted<string[]> {
  if (value === undefined || value === null) return ok([]);
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  const ids = new Set<string>();
  for (const item of list) {
    if (typeof item === 'string') {
      if (item.trim() !== '') ids.add(item.trim());
    } else if (typeof item === 'number' && Number.isFinite(item)) ids.add(String(item));
    else if (item !== null && item !== undefined) {
      return bad(`got ${show(item)} among them; expected strings, e.g. products.sku`);
    }
  }
  return ok([...ids]);
}

export function toData(value: unknown): Converted<Record<string, unknown>> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return ok(value as Record<string, unknown>);
  }
  return bad(`got ${show(value)}`);
}
