import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readRawLines } from '../../src/io/lines.js';

async function collect(chunks: Buffer[]): Promise<[number, string][]> {
  const out: [number, string][] = [];
  for await (const line of readRawLines(Readable.from(chunks)))
    out.push([line.lineNo, line.bytes.toString('latin1')]);
  return out;
}

describe('readRawLines', () => {
  it('splits across chunk boundaries, strips CRLF and keeps a last line without newline', async () => {
    const lines = await collect([Buffer.from('ab'), Buffer.from('c\r\nde\n\nf'), Buffer.from('g')]);
    expect(lines).toEqual([
      [1, 'abc'],
      [2, 'de'],
      [3, ''],
      [4, 'fg'],
    ]);
  });

  it('keeps bytes that are not valid UTF-8 untouched', async () => {
    const lines = [];
    for await (const line of readRawLines(Readable.from([Buffer.from([0xff, 0x0a, 0x41])])))
      lines.push(line.bytes);
    expect(lines[0]).toEqual(Buffer.from([0xff]));
    expect(lines[1]).toEqual(Buffer.from('A'));
  });
});
