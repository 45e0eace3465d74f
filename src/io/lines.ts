import type { Readable } from 'node:stream';

export interface RawLine {
  /** 1-based line number in the input. */
  lineNo: number;
  /** The line, or only its first `keepBytes` when it is longer than `maxLineBytes`. */
  bytes: Buffer;
  /** The line's full length in bytes (without the line ending). */
  length: number;
  /** Set when the line was longer than `maxLineBytes`: `bytes` is then only its beginning. */
  tooLong?: true;
}

export interface ReadLinesOptions {
  /** Longer lines are not held in memory: they come out as `tooLong` with only their beginning. */
  maxLineBytes?: number;
  /** How much of a too-long line to keep (for a reject file). */
  keepBytes?: number;
}

/**
 * Splits a byte stream into lines without decoding it, so invalid UTF-8 can be reported per line
 * instead of being silently replaced. Holds at most one partial line between chunks, and never more
 * than `maxLineBytes` of it, so one huge line cannot exhaust memory.
 */
export async function* readRawLines(
  input: Readable,
  options: ReadLinesOptions = {},
): AsyncGenerator<RawLine> {
  const maxLineBytes = options.maxLineBytes ?? Number.POSITIVE_INFINITY;
  const keepBytes = Math.min(options.keepBytes ?? 64 * 1024, maxLineBytes);
  // The current line's pieces from earlier chunks (copies: chunks may be large, the pieces are not).
  let parts: Buffer[] = [];
  let held = 0;
  let length = 0;
  let tooLong = false;
  let lineNo = 0;

  const append = (piece: Buffer) => {
    length += piece.length;
    if (!tooLong && held + piece.length > maxLineBytes) {
      tooLong = true;
      const head = Buffer.concat(parts, held);
      parts = [head.subarray(0, keepBytes), Buffer.from(piece.subarray(0, Math.max(0, keepBytes - held)))];
      held = Math.min(keepBytes, held + piece.length);
    } else if (!tooLong) {
      parts.push(Buffer.from(piece));
      held += piece.length;
    }
  };

  const finish = (): RawLine => {
    lineNo++;
    let bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, held);
    let lineLength = length;
    if (!tooLong && bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) {
      bytes = bytes.subarray(0, bytes.length - 1);
      lineLength--;
    }
    const line: RawLine = tooLong
      ? { lineNo, bytes, length: lineLength, tooLong: true }
      : { lineNo, bytes, length: lineLength };
    parts = [];
    held = 0;
    length = 0;
    tooLong = false;
    return line;
  };

  for await (const chunk of input) {
    const buf = chunk as Buffer;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl === -1) break;
      if (length === 0 && nl - start <= maxLineBytes) {
        // The common case: a whole line inside one chunk, handed out without copying.
        lineNo++;
        const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
        yield { lineNo, bytes: buf.subarray(start, end), length: end - start };
      } else {
        append(buf.subarray(start, nl));
        yield finish();
      }
      start = nl + 1;
    }
    if (start < buf.length) append(buf.subarray(start));
  }
  if (length > 0) yield finish();
}
