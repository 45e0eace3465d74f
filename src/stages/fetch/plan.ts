import { UsageError } from '../../errors.js';
import type { Source } from '../../records/envelope.js';
import { FETCH_SETTINGS, flagOf } from '../../settings/index.js';

const WINDOW = flagOf(FETCH_SETTINGS, 'window');

/**
 * Pure planning for `fetch`: time parsing, backfill windows and the names of the checkpoints the
 * stage keeps. No I/O here, so the rules can be read (and tested) in one place.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** How a backfill range is cut: windows of a fixed length, or a fixed number of equal windows. */
export type WindowSpec = { kind: 'duration'; ms: number; text: string } | { kind: 'count'; count: number };

export function parseWindowSpec(value: string): WindowSpec {
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count < 1) throw new UsageError(`${WINDOW} count must be at least 1, got "${value}"`);
    return { kind: 'count', count };
  }
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text);
  if (!match) {
    throw new UsageError(
      `${WINDOW} must be a duration like 6h, 1d, 2w or a number of windows, got "${value}"`,
    );
  }
  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] as string] as number));
  if (ms < 1_000) throw new UsageError(`${WINDOW} must be at least 1s, got "${value}"`);
  return { kind: 'duration', ms, text };
}

export function describeWindowSpec(spec: WindowSpec): string {
  return spec.kind === 'duration' ? spec.text : `${spec.count} windows`;
}

/**
 * Parses an operator-given time. A date alone is midnight UTC; a date-time without an offset is read
 * as UTC too (not local time), so the same flags name the same range on every machine.
 */
export function parseTime(flag: string, value: string): string {
  let text = value.trim();
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text = `${text.replace(' ', 'T')}Z`;
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(
      `${flag} must be an ISO date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z), got "${value}"`,
    );
  }
  return new Date(ms).toISOString();
}

/** Later of two source timestamps, compared as instants (sources do not all format them alike). */
export function maxTime(a: string | null | undefined, b: string | null | undefined): string | null {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isNaN(ta)) return b;
  if (Number.isNaN(tb)) return a;
  return tb > ta ? b : a;
}

/** Clamps a high-water mark below an exclusive upper bound, in case a source returns a record past it. */
export function clampBelow(value: string | null, until: string | undefined): string | null {
  if (value === null || until === undefined) return value;
  return Date.parse(value) > Date.parse(until) ? until : value;
}

export interface TimeWindow {
  since: string;
  until: string;
}

/** Cuts [since, until) into consecutive windows; the last one ends exactly at `until`. */
export function splitWindows(since: string, until: string, spec: WindowSpec): TimeWindow[] {
  const start = Date.parse(since);
  const end = Date.parse(until);
  if (!(end > start))
    throw new UsageError(
      `${flagOf(FETCH_SETTINGS, 'until')} (${until}) must be after ${flagOf(FETCH_SETTINGS, 'since')} (${since})`,
    );
  const step = spec.kind === 'duration' ? spec.ms : Math.max(1, Math.ceil((end - start) / spec.count));
  const count = Math.ceil((end - start) / step);
  if (count > 100_000) {
    throw new UsageError(
      `${WINDOW} ${describeWindowSpec(spec)} would cut this range into ${count} windows; use a longer window`,
    );
  }
  const windows: TimeWindow[] = [];
  for (let t = start; t < end; t += step) {
    windows.push({
      since: new Date(t).toISOString(),
      until: new Date(Math.min(t + step, end)).toISOString(),
    });
  }
  return windows;
}

/** The incremental checkpoint of a source: its completed high-water mark and any interrupted run. */
export function incrementalCheckpointName(source: Source): string {
  return `fetch:${source}`;
}

/** A backfill range's own record (its windowing, whether it finished). */
export function backfillRangeName(source: Source, since: string, until: string): string {
  return `fetch:${source}:backfill:${since}/${until}`;
}

/** One backfill window's progress. */
export function backfillWindowName(
  source: Source,
  since: string,
  until: string,
  windowStart: string,
): string {
  return `${backfillRangeName(source, since, until)}:${windowStart}`;
}

export function backfillPrefix(source: Source): string {
  return `fetch:${source}:backfill:`;
}
