/**
 * What the CRM and Inventory sources do alike once a page's raw records are in hand: map each record
 * to an envelope or a reject, drop exact repeats, track the window's high-water mark and count.
 * How a record is read (field names, time formats, what marks a delete) is the source's mapping
 * (src/mapping/).
 */
import { contentHashOf, makeEnvelope, type Envelope, type Source } from '../records/envelope.js';
import { readPath, type RecordMapper, type RecordReading } from '../mapping/index.js';
import type { SourcePage, SourceReject, SourceStats } from './source.js';

export { readPath, type RecordReading };

/** Counters of a source that builds envelopes through WindowRecords. */
export interface SourceRecordStats extends SourceStats {
  records: number;
  rejects: number;
  duplicatesDropped: number;
}

export function emptyRecordStats(): SourceRecordStats {
  return { requests: 0, retries: 0, pages: 0, records: 0, rejects: 0, duplicatesDropped: 0 };
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
    private readonly mapper: RecordMapper,
    private readonly keepReadings = false,
  ) {
    this.recent = new RecentIds(dedupeWindow);
  }

  /** One page's records as envelopes and rejects, counted, with the window's high-water mark so far. */
  async page(records: unknown[], cursor: unknown): Promise<SourcePage> {
    const envelopes: Envelope[] = [];
    const rejects: SourceReject[] = [];
    let pageHighWater: string | null = null;
    const fetchedAt = new Date().toISOString();
    // One await per page, not per record: a mapping of dot paths maps synchronously, a JSONata one
    // evaluates the page's records concurrently.
    const readings = await this.mapper.mapAll(records);
    for (const reading of readings) {
      if ('reject' in reading) {
        rejects.push(reading.reject);
        continue;
      }
      const { id, op, data, sourceUpdatedAt, sourceVersion, productIds } = reading;
      if (this.recent.seen(id, contentHashOf(op, data, productIds))) {
        this.counters.duplicatesDropped++;
        continue;
      }
      envelopes.push(
        makeEnvelope({
          source: this.source,
          id,
          op,
          data,
          sourceUpdatedAt,
          sourceVersion,
          fetchedAt,
          ...(productIds === undefined ? {} : { productIds }),
        }),
      );
      if (pageHighWater === null || sourceUpdatedAt > pageHighWater) pageHighWater = sourceUpdatedAt;
    }
    if (pageHighWater !== null && (this.highWater === null || pageHighWater > this.highWater))
      this.highWater = pageHighWater;
    this.counters.pages++;
    this.counters.records += envelopes.length;
    this.counters.rejects += rejects.length;
    const page: SourcePage = { envelopes, rejects, cursor, highWater: this.highWater };
    if (this.keepReadings) page.readings = records.map((raw, i) => ({ raw, reading: readings[i]! }));
    return page;
  }
}
