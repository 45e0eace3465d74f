/**
 * What the CRM and Inventory sources do alike once a page's raw records are in hand: map each record
 * to an envelope or a reject, drop exact repeats, track the window's high-water mark and count.
 * How a record is read (field names, time formats, what marks a delete) stays with each connector.
 */
import {
  contentHashOf,
  makeEnvelope,
  type Envelope,
  type Operation,
  type Source,
} from '../records/envelope.js';
import type { SourcePage, SourceReject, SourceStats } from './source.js';

/** Counters of a source that builds envelopes through WindowRecords. */
export interface SourceRecordStats extends SourceStats {
  records: number;
  rejects: number;
  duplicatesDropped: number;
}

export function emptyRecordStats(): SourceRecordStats {
  return { requests: 0, retries: 0, pages: 0, records: 0, rejects: 0, duplicatesDropped: 0 };
}

/** Reads a dot path; a key that itself contains dots (e.g. "@odata.nextLink") is matched whole first. */
export function readPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  if (value === null || typeof value !== 'object') return undefined;
  const obj = value as Record<string, unknown>;
  if (Object.hasOwn(obj, path)) return obj[path];
  for (let dot = path.indexOf('.'); dot !== -1; dot = path.indexOf('.', dot + 1)) {
    const head = path.slice(0, dot);
    if (Object.hasOwn(obj, head)) {
      const found = readPath(obj[head], path.slice(dot + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A small LRU of id → content hash, to drop exact repeats across page boundaries cheaply. */
export class RecentIds {
  private readonly map = new Map<string, string>();
  constructor(private readonly limit: number) {}

  /** True when (id, hash) was seen recently; records it either way. */
  seen(id: string, hash: string): boolean {
    if (this.limit === 0) return false;
    const previous = this.map.get(id);
    this.map.delete(id);
    this.map.set(id, hash);
    if (this.map.size > this.limit) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    return previous === hash;
  }
}

/** One raw record as a connector read it: the envelope's parts, or why it cannot become one. */
export type RecordReading =
  | {
      id: string;
      op: Operation;
      data: Record<string, unknown> | null;
      sourceUpdatedAt: string;
      sourceVersion: number | null;
    }
  | { reject: SourceReject };

/**
 * The pages of one window: dedupe and high-water mark live as long as the window's paging does,
 * the counters as long as the connector.
 */
export class WindowRecords {
  private readonly recent: RecentIds;
  private highWater: string | null = null;

  constructor(
    private readonly source: Source,
    dedupeWindow: number,
    private readonly counters: SourceRecordStats,
    private readonly read: (record: unknown) => RecordReading,
  ) {
    this.recent = new RecentIds(dedupeWindow);
  }

  /** One page's records as envelopes and rejects, counted, with the window's high-water mark so far. */
  page(records: unknown[], cursor: unknown): SourcePage {
    const envelopes: Envelope[] = [];
    const rejects: SourceReject[] = [];
    let pageHighWater: string | null = null;
    const fetchedAt = new Date().toISOString();
    for (const record of records) {
      const reading = this.read(record);
      if ('reject' in reading) {
        rejects.push(reading.reject);
        continue;
      }
      const { id, op, data, sourceUpdatedAt, sourceVersion } = reading;
      if (this.recent.seen(id, contentHashOf(op, data))) {
        this.counters.duplicatesDropped++;
        continue;
      }
      envelopes.push(
        makeEnvelope({ source: this.source, id, op, data, sourceUpdatedAt, sourceVersion, fetchedAt }),
      );
      if (pageHighWater === null || sourceUpdatedAt > pageHighWater) pageHighWater = sourceUpdatedAt;
    }
    if (pageHighWater !== null && (this.highWater === null || pageHighWater > this.highWater))
      this.highWater = pageHighWater;
    this.counters.pages++;
    this.counters.records += envelopes.length;
    this.counters.rejects += rejects.length;
    return { envelopes, rejects, cursor, highWater: this.highWater };
  }
}
