import { resolve } from 'node:path';
import type { FetchWindow } from '../../connectors/source.js';
import type { Source } from '../../records/envelope.js';
import type { Checkpoints } from '../../state/checkpoints.js';
import type { OutputMark, OutputSpec } from './output.js';
import { backfillPrefix, type WindowSpec } from './plan.js';

/**
 * The JSON values fetch keeps in the `checkpoints` table (see ../fetch.ts for what each name holds),
 * and the small helpers that read them.
 */

export interface WindowProgress {
  since: string | null;
  until: string | null;
  /** Position after the last durable page; undefined before the first. */
  cursor?: unknown;
  /** The last durable page said the window was exhausted. */
  exhausted: boolean;
  maxHighWater: string | null;
  pages: number;
  records: number;
  deletes: number;
  rejects: number;
  out: OutputMark | null;
  startedAt: string;
  updatedAt: string;
}

export interface IncrementalRun extends WindowProgress {
  mode: 'incremental' | 'full';
}

export interface IncrementalCheckpoint {
  highWater: string | null;
  lastRun: {
    mode: 'incremental' | 'full';
    since: string | null;
    until: string | null;
    completedAt: string;
    records: number;
  } | null;
  run: IncrementalRun | null;
}

export interface RangeRecord {
  kind: 'range';
  since: string;
  until: string;
  openEnded: boolean;
  window: WindowSpec;
  status: 'running' | 'done';
  startedAt: string;
  completedAt: string | null;
}

export interface WindowRecord extends WindowProgress {
  kind: 'window';
  status: 'running' | 'done';
}

export function emptyProgress(window: FetchWindow, now: Date): WindowProgress {
  return {
    since: window.since ?? null,
    until: window.until ?? null,
    exhausted: false,
    maxHighWater: null,
    pages: 0,
    records: 0,
    deletes: 0,
    rejects: 0,
    out: null,
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

export function windowOf(progress: Pick<WindowProgress, 'since' | 'until'>): FetchWindow {
  const window: FetchWindow = {};
  if (progress.since !== null) window.since = progress.since;
  if (progress.until !== null) window.until = progress.until;
  return window;
}

/** The file offset a resumed run continues from: the furthest durable write into the same file. */
export function resumeOffset(
  spec: OutputSpec,
  progresses: (WindowProgress | undefined)[],
): number | undefined {
  if (spec.kind !== 'file') return undefined;
  const target = resolve(spec.path);
  let offset: number | undefined;
  for (const p of progresses) {
    if (p?.out && p.out.path === target) offset = Math.max(offset ?? 0, p.out.bytes);
  }
  return offset;
}

export async function findRange(
  checkpoints: Checkpoints,
  source: Source,
  predicate: (r: RangeRecord) => boolean,
): Promise<RangeRecord[]> {
  const all = await checkpoints.list(backfillPrefix(source));
  return all
    .map((c) => c.value as RangeRecord | WindowRecord)
    .filter((v): v is RangeRecord => v.kind === 'range' && predicate(v));
}
