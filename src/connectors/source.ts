import type { RecordReading } from '../mapping/index.js';
import type { Envelope, Source } from '../records/envelope.js';

/** A time range of source modification times; both ends optional, since inclusive, until exclusive. */
export interface FetchWindow {
  since?: string;
  until?: string;
}

/** Something from a page that could not become an envelope (kept, counted, reported — never dropped). */
export interface SourceReject {
  reason: string;
  raw: string;
  /** Set when the source's mapping failed on the record: which field, its expression, the error. */
  mapping?: { field: string; expression: string; error: string };
}

/** The time filters a source's listing has: a run uses only those (see FetchWindow). */
export interface SourceFilters {
  since: boolean;
  until: boolean;
}

export interface SourcePage {
  envelopes: Envelope[];
  rejects: SourceReject[];
  /** Opaque position to resume after this page (null once the window is exhausted). JSON-serialisable. */
  cursor: unknown;
  /** Greatest source modification time seen so far in this window, for the incremental high-water mark. */
  highWater: string | null;
  /** Each raw record with what the mapping made of it, before deduplication: only for `syncctl probe`. */
  readings?: { raw: unknown; reading: RecordReading }[];
}

export interface SourceStats {
  requests: number;
  retries: number;
  pages: number;
}

/** A paged source: REST (CRM) or SOAP (Inventory). Configuration lives in the connector, not the stage. */
export interface SourceConnector {
  readonly source: Source;
  /**
   * Without an until filter a window's `until` is not sent: the source lists up to now, and the
   * high-water mark comes from the records seen.
   */
  readonly filters?: SourceFilters;
  /** Pages of one window, starting after `resumeFrom` when given (a cursor a previous page returned). */
  pages(window: FetchWindow, resumeFrom?: unknown): AsyncIterable<SourcePage>;
  stats(): SourceStats;
  close(): Promise<void>;
}
