/**
 * One state-store user at a time inside this process: the batch handler, the idle drain and the
 * end-of-run drain share one connection on SQLite, where interleaved transactions would merge.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
