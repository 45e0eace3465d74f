import { open, type FileHandle } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { OWNER_ONLY_FILE } from '../paths.js';
import { Serial } from './serial.js';

/** What every reject line carries; writers add their own context (line number, source window, …). */
export interface Reject {
  reason: string;
  /** The original record as text (invalid bytes replaced), so an operator can fix and re-send it. */
  raw: string;
}

export interface RejectFileOptions {
  /** Keep what an earlier, interrupted run wrote (a resumed fetch) instead of starting the file anew. */
  append?: boolean;
  /**
   * fsync each add before it resolves: for callers that record progress right after (fetch moves a
   * checkpoint), so a reject is never lost to a kill.
   */
  durable?: boolean;
}

const MAX_RAW = 64 * 1024;

/** A reject keeps enough of the record to identify and fix it, not all of an oversized one. */
function clip(raw: string): string {
  return raw.length > MAX_RAW ? `${raw.slice(0, MAX_RAW)}…` : raw;
}

/**
 * The NDJSON reject file of publish and fetch: one JSON object per reject, `raw` clipped to 64 KiB.
 * Created only when the first reject arrives; adds are written in call order.
 */
export class RejectFile<R extends Reject = Reject> {
  private handle: FileHandle | undefined;
  private readonly serial = new Serial();
  count = 0;

  constructor(
    readonly path: string,
    private readonly options: RejectFileOptions = {},
  ) {}

  /** Whether this run wrote to the file. */
  get used(): boolean {
    return this.handle !== undefined;
  }

  add(reject: R): Promise<void> {
    return this.addAll([reject]);
  }

  addAll(rejects: readonly R[]): Promise<void> {
    if (rejects.length === 0) return Promise.resolve();
    return this.serial.run(async () => {
      try {
        // Rejects hold whole source records (customer data): owner-only when this creates the file.
        this.handle ??= await open(this.path, this.options.append ? 'a' : 'w', OWNER_ONLY_FILE);
        const lines = rejects.map((r) => JSON.stringify({ ...r, raw: clip(r.raw) })).join('\n');
        await this.handle.write(`${lines}\n`);
        if (this.options.durable) await this.handle.datasync();
      } catch (err) {
        throw new InputError(`cannot write the reject file ${this.path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      this.count += rejects.length;
    });
  }

  close(): Promise<void> {
    return this.serial.run(async () => {
      await this.handle?.close();
    });
  }
}
