import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { InputError } from '../errors.js';

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

  private failure: Error | undefined;

  private writeError(err: Error): InputError {
    return new InputError(`cannot write the reject file ${this.path}: ${err.message}`, { cause: err });
  }

  async add(reject: Reject): Promise<void> {
    if (!this.stream) {
      const stream = createWriteStream(this.path, { flags: 'w' });
      // Without a listener an open or write failure is an unhandled 'error' event: a crash with a stack.
      stream.on('error', (err) => (this.failure ??= err));
      try {
        await once(stream, 'ready');
      } catch (err) {
        throw this.writeError(err as Error);
      }
      this.stream = stream;
    }
    if (this.failure) throw this.writeError(this.failure);
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
