import { UsageError } from '../../errors.js';
import type { StoredLetter } from './letter.js';

/** One --offset range: inclusive bounds, on one partition or all. */
export interface OffsetRange {
  partition: number | null;
  from: bigint | null;
  to: bigint | null;
}

export interface LetterFilter {
  errorClass?: string;
  /** Text in the error code or message (case-insensitive). */
  error?: string;
  sourceTopic?: string;
  key?: string;
  /** Dead-lettered at or after (epoch ms). */
  sinceMs?: number;
  /** Dead-lettered before (epoch ms). */
  untilMs?: number;
  minAttempts?: number;
  offsets?: OffsetRange[];
}

const RANGE = /^(?:(\d+):)?(\d*)(-?)(\d*)$/;

/** "0:10-20,1:5,30-" → ranges; a bare N is that one offset. */
export function parseOffsetRanges(text: string): OffsetRange[] {
  const ranges: OffsetRange[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = RANGE.exec(part);
    if (part === '' || !m || (m[2] === '' && m[4] === '')) {
      throw new UsageError(
        `--offset: cannot read "${part}"; use N, A-B, A-, -B, each optionally P: (e.g. 0:10-20)`,
      );
    }
    const [, partition, from, dash, to] = m as unknown as [
      string,
      string | undefined,
      string,
      string,
      string,
    ];
    const range: OffsetRange = {
      partition: partition === undefined ? null : Number(partition),
      from: from === '' ? null : BigInt(from),
      to: dash === '' ? BigInt(from) : to === '' ? null : BigInt(to),
    };
    if (range.from !== null && range.to !== null && range.from > range.to) {
      throw new UsageError(`--offset: "${part}" ends before it starts`);
    }
    ranges.push(range);
  }
  return ranges;
}

export function parseTime(text: string, flag: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${flag} must be an ISO date/time, got "${text}"`);
  return ms;
}

export function inRanges(ranges: OffsetRange[] | undefined, partition: number, offset: string): boolean {
  if (ranges === undefined || ranges.length === 0) return true;
  const o = BigInt(offset);
  return ranges.some(
    (r) =>
      (r.partition === null || r.partition === partition) &&
      (r.from === null || o >= r.from) &&
      (r.to === null || o <= r.to),
  );
}

export function matches(filter: LetterFilter, letter: StoredLetter): boolean {
  if (filter.errorClass !== undefined && letter.error.class !== filter.errorClass) return false;
  if (filter.error !== undefined) {
    const needle = filter.error.toLowerCase();
    const hay = `${letter.error.code}\n${letter.error.message}`.toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  if (filter.sourceTopic !== undefined && letter.source.topic !== filter.sourceTopic) return false;
  if (filter.key !== undefined && letter.source.key !== filter.key && letter.customerId !== filter.key)
    return false;
  const at = Date.parse(letter.deadLetteredAt);
  if (filter.sinceMs !== undefined && !(at >= filter.sinceMs)) return false;
  if (filter.untilMs !== undefined && !(at < filter.untilMs)) return false;
  if (filter.minAttempts !== undefined && letter.attempts < filter.minAttempts) return false;
  return inRanges(filter.offsets, letter.partition, letter.offset);
}
