import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { RejectFile, type Reject } from '../../src/io/reject-file.js';
import { tempDir } from '../helpers/temp.js';

type LineReject = Reject & { line: number };

function lines(path: string): unknown[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);
}

describe('RejectFile', () => {
  it('creates the file owner-only: rejects are whole customer records', async () => {
    const path = join(tempDir('syncctl-rejects-'), 'r.ndjson');
    const file = new RejectFile(path);
    await file.add({ reason: 'bad', raw: '{"email":"a@example.com"}' });
    await file.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('is not created until the first reject arrives', async () => {
    const path = join(tempDir('syncctl-rejects-'), 'r.ndjson');
    const file = new RejectFile(path);
    await file.addAll([]);
    await file.close();
    expect(existsSync(path)).toBe(false);
    expect(file.used).toBe(false);
    expect(file.count).toBe(0);
  });

  it('writes one JSON object per reject, in call order, keeping the caller’s fields', async () => {
    const path = join(tempDir('syncctl-rejects-'), 'r.ndjson');
    const file = new RejectFile<LineReject>(path);
    // Not awaited one by one: concurrent adds must still land in call order.
    await Promise.all([
      file.add({ line: 1, reason: 'bad json', raw: '{' }),
      file.addAll([
        { line: 2, reason: 'missing id', raw: '{}' },
        { line: 3, reason: 'wrong entity', raw: '{"entity":"x"}' },
      ]),
    ]);
    await file.close();
    expect(file.count).toBe(3);
    expect(file.used).toBe(true);
    expect(lines(path)).toEqual([
      { line: 1, reason: 'bad json', raw: '{' },
      { line: 2, reason: 'missing id', raw: '{}' },
      { line: 3, reason: 'wrong entity', raw: '{"entity":"x"}' },
    ]);
  });

  it('clips a huge raw record to 64 KiB', async () => {
    const path = join(tempDir('syncctl-rejects-'), 'r.ndjson');
    const file = new RejectFile(path);
    await file.add({ reason: 'too large', raw: 'x'.repeat(100_000) });
    await file.close();
    const [line] = lines(path) as [{ raw: string }];
    expect(line.raw).toHaveLength(64 * 1024 + 1);
    expect(line.raw.endsWith('…')).toBe(true);
  });

  it('starts the file anew, or appends to it for a resumed run', async () => {
    const dir = tempDir('syncctl-rejects-');
    const fresh = join(dir, 'fresh.ndjson');
    const resumed = join(dir, 'resumed.ndjson');
    writeFileSync(fresh, '{"old":true}\n');
    writeFileSync(resumed, '{"old":true}\n');
    const a = new RejectFile(fresh);
    const b = new RejectFile(resumed, { append: true, durable: true });
    await a.add({ reason: 'r', raw: 'a' });
    await b.add({ reason: 'r', raw: 'b' });
    await Promise.all([a.close(), b.close()]);
    expect(lines(fresh)).toEqual([{ reason: 'r', raw: 'a' }]);
    expect(lines(resumed)).toEqual([{ old: true }, { reason: 'r', raw: 'b' }]);
  });

  it('fails with an InputError naming the file when it cannot be written', async () => {
    const path = join(tempDir('syncctl-rejects-'), 'no-such-dir', 'r.ndjson');
    const file = new RejectFile(path);
    const err = await file.add({ reason: 'r', raw: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(`cannot write the reject file ${path}`);
    expect(file.count).toBe(0);
    await file.close();
  });
});
