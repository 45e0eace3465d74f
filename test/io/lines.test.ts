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

describe('readRawLines with maxLineBytes', () => {
  it('hands out a too-long line as its length and beginning only, and goes on with the next', async () => {
    const long = Buffer.alloc(10_000, 0x61);
    const chunks = [
      Buffer.from('ok\n'),
      long.subarray(0, 3_000),
      long.subarray(3_000),
      Buffer.from('\r\nnext\nx'),
    ];
    const lines = [];
    for await (const line of readRawLines(Readable.from(chunks), { maxLineBytes: 1_000, keepBytes: 100 }))
      lines.push({ ...line, bytes: line.bytes.toString('latin1') });
    expect(lines).toEqual([
      { lineNo: 1, bytes: 'ok', length: 2 },
      { lineNo: 2, bytes: 'a'.repeat(100), length: 10_001, tooLong: true },
      { lineNo: 3, bytes: 'next', length: 4 },
      { lineNo: 4, bytes: 'x', length: 1 },
    ]);
  });

  it('keeps a line of exactly maxLineBytes whole, split across chunks or not', async () => {
    const lines = [];
    for await (const line of readRawLines(Readable.from([Buffer.from('abc'), Buffer.from('d\nabcd\n')]), {
      maxLineBytes: 4,
    }))
      lines.push([line.bytes.toString(), line.tooLong ?? false]);
    expect(lines).toEqual([
      ['abcd', false],
      ['abcd', false],
    ]);
  });
});
