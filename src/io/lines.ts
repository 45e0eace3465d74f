import type { Readable } from 'node:stream';

export interface RawLine {
  /** 1-based line number in the input. */
  lineNo: number;
  bytes: Buffer;
}

/**
 * Splits a byte stream into lines without decoding it, so invalid UTF-8 can be reported per line
 * instead of being silently replaced. Holds at most one partial line between chunks.
 */
export async function* readRawLines(input: Readable): AsyncGenerator<RawLine> {
  let carry: Buffer = Buffer.alloc(0);
  let lineNo = 0;
  for await (const chunk of input) {
    const buf: Buffer = carry.length === 0 ? (chunk as Buffer) : Buffer.concat([carry, chunk as Buffer]);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl === -1) break;
      lineNo++;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      yield { lineNo, bytes: buf.subarray(start, end) };
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  if (carry.length > 0) {
    lineNo++;
    yield { lineNo, bytes: carry };
  }
}
