import type { SyncError } from '../../errors.js';
import type { SourceConnector } from '../../connectors/source.js';
import type { Source } from '../../records/envelope.js';
import type { Db } from '../../state/db.js';
import type { Logger } from '../../log.js';
import type { FetchOutput, OutputSpec } from './output.js';
import type { WindowSpec } from './plan.js';

/** What the fetch stage takes and returns. */

export type FetchMode =
  | { kind: 'incremental' }
  | { kind: 'full' }
  | {
      kind: 'backfill';
      since: string;
      /** Exclusive end; omitted means "now", fixed when the range is first started. */
      until?: string;
      window: WindowSpec;
    };

export interface FetchOptions {
  connector: SourceConnector;
  db: Db;
  output: OutputSpec;
  mode: FetchMode;
  /** Only continue interrupted work; start nothing new (`--resume`). */
  resumeOnly?: boolean;
  /** Throw away interrupted progress (and, for a backfill range, finished windows) first (`--restart`). */
  restart?: boolean;
  rejectsPath: string;
  /** A record whose envelope is larger goes to the reject file (--max-record-bytes). */
  maxRecordBytes?: number;
  /**
   * Pages fetched at most in this run (--max-pages), over all windows; then the run stops with status
   * page-limit and its progress stored, so the next run continues after the last page.
   */
  maxPages?: number;
  /** Backfill windows fetched at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: FetchProgress) => void;
  logger?: Logger;
  now?: () => Date;
}

export interface FetchProgress {
  pages: number;
  records: number;
  windowsDone: number;
  windowsTotal: number;
}

/** Where a run that did not complete stopped: the window, and how far its durable progress reaches (pages counted across resumes). */
export interface FetchStop {
  window: { since: string | null; until: string | null } | null;
  durablePages: number | null;
}

export interface BackfillSummary {
  since: string;
  until: string;
  window: string;
  concurrency: number;
  windows: number;
  /** Finished in this run. */
  completed: number;
  /** Already finished by an earlier run: not fetched again. */
  alreadyDone: number;
  /** Started by an earlier run and continued from its cursor. */
  resumed: number;
  failed: number;
  /** Not finished (stopped or never started) — a rerun continues them. */
  remaining: number;
  checkpoint: string;
}

export interface FetchSummary {
  source: Source;
  mode: 'incremental' | 'full' | 'backfill';
  /** page-limit: --max-pages stopped the run with work left, its progress stored for the next run. */
  status: 'completed' | 'failed' | 'interrupted' | 'page-limit' | 'nothing-to-resume';
  output: { kind: FetchOutput['kind']; target: string };
  /** Whether interrupted progress of an earlier run was continued. */
  resumed: boolean;
  window: { since: string | null; until: string | null } | null;
  pages: number;
  records: number;
  upserts: number;
  deletes: number;
  rejects: number;
  rejectsFile: string | null;
  requests: number;
  retries: number;
  durationMs: number;
  /** The incremental checkpoint: its high-water mark before and after this run (unchanged by backfills). */
  checkpoint: { name: string; before: string | null; after: string | null };
  backfill: BackfillSummary | null;
  /** Why the run did not complete (status failed or interrupted); printed by --json as {code, message, hint, retryable, exitCode}. */
  error: SyncError | null;
  stoppedAt: FetchStop | null;
}
