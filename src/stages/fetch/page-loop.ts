import { InterruptedError, toSyncError, type SyncError } from '../../errors.js';
import type { SourcePage } from '../../connectors/source.js';
import type { Envelope } from '../../records/envelope.js';
import type { Checkpoints } from '../../state/checkpoints.js';
import type { Logger } from '../../log.js';
import type { RejectFile } from '../../io/reject-file.js';
import { envelopeJson, type FetchOutput } from './output.js';
import { recordSizeProblem } from '../../records/size-limit.js';
import { clampBelow, maxTime } from './plan.js';
import { windowOf, type WindowProgress } from './checkpoint-records.js';
import type { FetchOptions, FetchStop, FetchSummary } from './types.js';

/**
 * The page loop shared by every kind of run: fetch a page, make it durable, record the progress it
 * proves — with one page fetched ahead and failures or interruptions recorded, not thrown.
 */

/** A fetch reject line: which page of which window it came from (page counted across resumes). */
export interface FetchReject {
  source: string;
  window: { since: string | null; until: string | null };
  page: number;
  reason: string;
  raw: string;
}

export class Totals {
  pages = 0;
  records = 0;
  deletes = 0;
  windowsDone = 0;
  windowsTotal = 1;
}

function maxEnvelopeTime(envelopes: Envelope[]): string | null {
  let max: string | null = null;
  for (const e of envelopes) max = maxTime(max, e.sourceUpdatedAt);
  return max;
}

class Stop extends Error {}

/** Everything one invocation shares between its windows. */
export class Run {
  readonly totals = new Totals();
  failure: { error: SyncError; progress: WindowProgress | null } | undefined;
  interrupted = false;
  /** Stopped by --max-pages with work left: the next run continues from the stored progress. */
  pageLimited = false;
  /** Pages handed to commit so far, over every window of the run (what --max-pages counts). */
  private pagesTaken = 0;

  constructor(
    readonly options: FetchOptions,
    readonly output: FetchOutput,
    readonly rejects: RejectFile<FetchReject>,
    readonly checkpoints: Checkpoints,
    readonly logger: Logger,
  ) {}

  get stopping(): boolean {
    return (
      this.failure !== undefined ||
      this.interrupted ||
      this.pageLimited ||
      this.options.signal?.aborted === true
    );
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  progress(): void {
    const t = this.totals;
    this.options.onProgress?.({
      pages: t.pages,
      records: t.records,
      windowsDone: t.windowsDone,
      windowsTotal: t.windowsTotal,
    });
  }

  fail(error: unknown, progress: WindowProgress | null): void {
    // The first failure is the one to report; later ones are usually its echo from other windows.
    if (this.failure === undefined) this.failure = { error: toSyncError(error), progress };
  }

  /**
   * Moves the envelopes over --max-record-bytes, or that the output cannot take (over a topic's size
   * limit), to the page's rejects, so one oversized record is kept in the reject file instead of
   * failing the whole page.
   */
  private refuseOversized(page: SourcePage): SourcePage {
    const refuse = this.output.refuse?.bind(this.output);
    const { maxRecordBytes } = this.options;
    if (refuse === undefined && maxRecordBytes === undefined) return page;
    const envelopes: Envelope[] = [];
    const rejects = [...page.rejects];
    for (const envelope of page.envelopes) {
      const reason =
        (maxRecordBytes === undefined
          ? undefined
          : recordSizeProblem(Buffer.byteLength(envelopeJson(envelope)), maxRecordBytes)) ??
        refuse?.(envelope);
      if (reason === undefined) envelopes.push(envelope);
      else
        rejects.push({
          reason: `${envelope.entity} ${envelope.id}: ${reason}`,
          raw: JSON.stringify(envelope),
        });
    }
    return rejects.length === page.rejects.length ? page : { ...page, envelopes, rejects };
  }

  /** Makes one page durable, then records the progress it proves. */
  private async commit(
    page: SourcePage,
    progress: WindowProgress,
    persist: (p: WindowProgress) => Promise<void>,
  ): Promise<void> {
    page = this.refuseOversized(page);
    const mark = page.envelopes.length > 0 ? await this.output.write(page.envelopes) : undefined;
    const pageNo = progress.pages + 1;
    const context = {
      source: this.options.connector.source,
      window: { since: progress.since, until: progress.until },
      page: pageNo,
    };
    await this.rejects.addAll(
      page.rejects.map((r) => ({
        ...context,
        reason: r.reason,
        ...(r.mapping ? { mapping: r.mapping } : {}),
        raw: r.raw,
      })),
    );
    let deletes = 0;
    for (const e of page.envelopes) if (e.op === 'delete') deletes++;
    const seen = maxTime(page.highWater, maxEnvelopeTime(page.envelopes));
    const next: WindowProgress = {
      ...progress,
      cursor: page.cursor,
      exhausted: page.cursor === null || page.cursor === undefined,
      maxHighWater: maxTime(progress.maxHighWater, clampBelow(seen, progress.until ?? undefined)),
      pages: pageNo,
      records: progress.records + page.envelopes.length,
      deletes: progress.deletes + deletes,
      rejects: progress.rejects + page.rejects.length,
      out: mark ?? progress.out,
      updatedAt: this.now().toISOString(),
    };
    await persist(next);
    Object.assign(progress, next);
    this.totals.pages++;
    this.totals.records += page.envelopes.length;
    this.totals.deletes += deletes;
    this.progress();
  }

  /**
   * Pages through one window from its stored cursor. The next page is fetched while the previous one
   * is being made durable — never more than that, so memory holds at most two pages per window.
   * Returns true when the window is exhausted; false when it stopped early (failure elsewhere, signal).
   */
  async drain(progress: WindowProgress, persist: (p: WindowProgress) => Promise<void>): Promise<boolean> {
    if (progress.exhausted) return true;
    const iterable = this.options.connector.pages(windowOf(progress), progress.cursor);
    const iterator = iterable[Symbol.asyncIterator]();
    let inFlight: Promise<void> | undefined;
    let commitError: unknown;
    let finished = false;
    const settle = async () => {
      if (inFlight) await inFlight;
      inFlight = undefined;
      if (commitError !== undefined) throw commitError;
    };
    try {
      for (;;) {
        if (this.stopping) {
          await settle();
          return false;
        }
        const { maxPages } = this.options;
        if (maxPages !== undefined && this.pagesTaken >= maxPages) {
          // Not even requested: the page after the limit is the next run's first.
          await settle();
          if (progress.exhausted) {
            finished = true;
            return true;
          }
          this.pageLimited = true;
          return false;
        }
        let next: IteratorResult<SourcePage>;
        try {
          next = await this.nextPage(iterator);
        } catch (err) {
          // The pages before the bad one still count: let the one being committed finish first.
          await settle();
          throw err;
        }
        await settle();
        if (next.done) {
          finished = true;
          return true;
        }
        this.pagesTaken++;
        inFlight = this.commit(next.value, progress, persist).catch((err: unknown) => {
          commitError = err;
        });
      }
    } finally {
      if (!finished) {
        // Do not wait: a generator blocked in a request only returns once that request ends.
        void iterator.return?.()?.catch(() => {});
      }
    }
  }

  /** The next page, or a Stop as soon as the run is interrupted (a hung request must not hold Ctrl-C). */
  private nextPage(iterator: AsyncIterator<SourcePage>): Promise<IteratorResult<SourcePage>> {
    const signal = this.options.signal;
    if (!signal) return iterator.next();
    if (signal.aborted) return Promise.reject(new Stop());
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new Stop());
      signal.addEventListener('abort', onAbort, { once: true });
      iterator.next().then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /** drain() with failures and interruptions recorded instead of thrown. */
  async drainSafely(
    progress: WindowProgress,
    persist: (p: WindowProgress) => Promise<void>,
  ): Promise<boolean> {
    try {
      const done = await this.drain(progress, persist);
      if (!done && this.options.signal?.aborted) this.interrupted = true;
      return done;
    } catch (err) {
      if (err instanceof Stop) {
        this.interrupted = true;
        return false;
      }
      this.fail(err, progress);
      return false;
    }
  }
}

export function failureOf(run: Run): { error: SyncError; stoppedAt: FetchStop } | null {
  if (run.failure) {
    const { error, progress } = run.failure;
    return {
      error,
      stoppedAt: {
        window: progress ? { since: progress.since, until: progress.until } : null,
        durablePages: progress ? progress.pages : null,
      },
    };
  }
  if (run.interrupted) {
    return {
      error: new InterruptedError('fetch interrupted'),
      stoppedAt: { window: null, durablePages: null },
    };
  }
  return null;
}

export interface Plan {
  mode: FetchSummary['mode'];
  /** Progress of earlier runs this invocation continues (for the output's resume offset). */
  earlier: (WindowProgress | undefined)[];
  resumed: boolean;
  execute(run: Run): Promise<Pick<FetchSummary, 'window' | 'backfill'> & { after: string | null }>;
}
