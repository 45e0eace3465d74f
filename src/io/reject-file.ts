import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

export interface Reject {
  line: number;
  reason: string;
  /** The original line as text (invalid bytes replaced), so an operator can fix and re-publish it. */
  raw: string;
}

const MAX_RAW = 64 * 1024;

/** NDJSON reject file, created only when the first reject arrives; every write is flushed before close resolves. */
export class RejectFile {
  private stream: WriteStream | undefined;
  count = 0;

  constructor(readonly path: string) {}

  async add(reject: Reject): Promise<void> {
    this.stream ??= createWriteStream(this.path, { flags: 'w' });
    this.count++;
    const raw = reject.raw.length > MAX_RAW ? `${reject.raw.slice(0, MAX_RAW)}…` : reject.raw;
    if (!this.stream.write(`${JSON.stringify({ ...reject, raw })}\n`)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    if (!this.stream) return;
    const stream = this.stream;
    this.stream = undefined;
    await new Promise<void>((resolve, reject) =>
      stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  }
}
