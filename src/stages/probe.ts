/**
 * The probe stage: the first page of a source, read with the current settings, each raw record next
 * to what the mapping makes of it, and warnings about what looks wrong — the first thing to run
 * against a new system. Nothing is published, no checkpoint is read or moved, no state is written.
 */
import type { FetchWindow, SourceConnector, SourcePage } from '../connectors/source.js';
import { soapToJson, type RecordReading } from '../mapping/index.js';
import type { Source } from '../records/envelope.js';

export interface ProbeOptions {
  /** A connector built with `keepReadings`, so pages carry their raw records. */
  connector: SourceConnector;
  /** How many records of the page the report shows; warnings cover the whole page. */
  limit: number;
  now?: () => Date;
}

/** What the mapping made of one record (the envelope's parts). */
export interface ProbeMapped {
  id: string;
  updatedAt: string;
  version: number | null;
  deleted: boolean;
  /** Absent when the mapping maps no product references. */
  productIds?: string[];
  data: Record<string, unknown> | null;
}

export interface ProbeRecord {
  /** 1-based position on the page. */
  index: number;
  /** The record as received (a SOAP record as the JSON the mapping sees). */
  raw: unknown;
  mapped?: ProbeMapped;
  reject?: { reason: string; mapping?: { field: string; expression: string; error: string } };
}

export type ProbeWarningCode =
  | 'empty-page'
  | 'rejected'
  | 'missing-id'
  | 'repeated-id'
  | 'bad-timestamp'
  | 'equal-timestamps'
  | 'future-timestamp'
  | 'all-deleted'
  | 'delimited-refs';

export type ProbeNoteCode = 'none-deleted' | 'unordered' | 'no-product-refs';

export interface ProbeFinding<C extends string> {
  code: C;
  message: string;
}

export interface ProbeReport {
  source: Source;
  window: FetchWindow;
  /** Records on the page, and how many of them `records` shows (the first `limit`, plus every reject). */
  pageRecords: number;
  shown: number;
  mapped: number;
  rejected: number;
  /** Whether the source has a next page (not fetched). */
  morePages: boolean;
  records: ProbeRecord[];
  /** What looks wrong: the CLI exits 3 when there is any. */
  warnings: ProbeFinding<ProbeWarningCode>[];
  /** Worth knowing, often fine (e.g. no delete on a small page). */
  notes: ProbeFinding<ProbeNoteCode>[];
}

/** A modification time this far ahead of the probe's clock is taken as wrong, not as clock skew. */
const FUTURE_SLACK_MS = 5 * 60_000;
/** Characters that make one "id" look like a list that was never split. */
const LIST_SEPARATOR = /[;,|]/;

function toProbeRecord(index: number, raw: unknown, reading: RecordReading): ProbeRecord {
  const shown = soapToJson(raw);
  if ('reject' in reading) {
    const { reason, mapping } = reading.reject;
    return { index, raw: shown, reject: { reason, ...(mapping ? { mapping } : {}) } };
  }
  const mapped: ProbeMapped = {
    id: reading.id,
    updatedAt: reading.sourceUpdatedAt,
    version: reading.sourceVersion,
    deleted: reading.op === 'delete',
    ...(reading.productIds === undefined ? {} : { productIds: reading.productIds }),
    data: reading.data,
  };
  return { index, raw: shown, mapped };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function sample(values: readonly string[], max = 3): string {
  const head = values.slice(0, max).map((v) => JSON.stringify(v));
  return values.length > max ? `${head.join(', ')}, …` : head.join(', ');
}

/** The warnings and notes of one page, over all its records (shown or not). */
export function assessPage(
  source: Source,
  records: readonly ProbeRecord[],
  now: Date,
): Pick<ProbeReport, 'warnings' | 'notes'> {
  const warnings: ProbeFinding<ProbeWarningCode>[] = [];
  const notes: ProbeFinding<ProbeNoteCode>[] = [];
  const warn = (code: ProbeWarningCode, message: string) => warnings.push({ code, message });
  if (records.length === 0) {
    warn(
      'empty-page',
      `the first page has no records: check the listing path, the records path and the filters (or the ${source} is empty)`,
    );
    return { warnings, notes };
  }
  const rejects = records.filter((r) => r.reject);
  const byField = (field: string) => rejects.filter((r) => r.reject?.mapping?.field === field);
  const noId = byField('id');
  if (noId.length > 0) {
    warn(
      'missing-id',
      `${plural(noId.length, 'record')} without an id (e.g. #${noId[0]?.index}: ${noId[0]?.reject?.reason}): check the id mapping`,
    );
  }
  const badTime = byField('updatedAt');
  if (badTime.length > 0) {
    warn(
      'bad-timestamp',
      `${plural(badTime.length, 'record')} with a modification time that does not parse (e.g. #${badTime[0]?.index}: ${badTime[0]?.reject?.reason})`,
    );
  }
  const other = rejects.filter((r) => !noId.includes(r) && !badTime.includes(r));
  if (other.length > 0) {
    warn(
      'rejected',
      `${plural(other.length, 'record')} would be rejected (e.g. #${other[0]?.index}: ${other[0]?.reject?.reason})`,
    );
  }

  const mapped = records.flatMap((r) => (r.mapped ? [r.mapped] : []));
  if (mapped.length === 0) return { warnings, notes };
  const counts = new Map<string, number>();
  for (const m of mapped) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
  const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  if (repeated.length > 0) {
    warn(
      'repeated-id',
      `${plural(repeated.length, 'id')} appear more than once on one page (${sample(repeated)}): the id mapping may read a field that is not unique`,
    );
  }
  const times = mapped.map((m) => Date.parse(m.updatedAt));
  if (mapped.length > 1 && times.every((t) => t === times[0])) {
    warn(
      'equal-timestamps',
      `every record has the same modification time (${mapped[0]?.updatedAt}): incremental runs cannot tell old from new; check that updatedAt maps a modification time`,
    );
  }
  const future = mapped.filter((m) => Date.parse(m.updatedAt) > now.getTime() + FUTURE_SLACK_MS);
  if (future.length > 0) {
    warn(
      'future-timestamp',
      `${plural(future.length, 'record')} modified in the future (e.g. ${future[0]?.id} at ${future[0]?.updatedAt}): a wrong time zone or unit would move the high-water mark past later changes`,
    );
  }
  const deleted = mapped.filter((m) => m.deleted).length;
  if (deleted === mapped.length) {
    warn(
      'all-deleted',
      `every record maps as deleted: check the deleted mapping (e.g. "active" must not read as a delete)`,
    );
  } else if (deleted === 0) {
    notes.push({
      code: 'none-deleted',
      message:
        'no record on this page maps as deleted: fine if the page has none, else check the deleted mapping',
    });
  }
  const joined = [
    ...new Set(mapped.flatMap((m) => (m.productIds ?? []).filter((id) => LIST_SEPARATOR.test(id)))),
  ];
  if (joined.length > 0) {
    warn(
      'delimited-refs',
      `${plural(joined.length, 'product reference')} look like one delimited string (${sample(joined)}): split it in the mapping, e.g. "productIds": "$split(Field, \\";\\")"`,
    );
  }
  if (times.some((t, i) => i > 0 && t < (times[i - 1] as number))) {
    notes.push({
      code: 'unordered',
      message:
        'the page is not in modification-time order: fine for fetch (it keeps the greatest time it saw), but check the listing sorts if the source pages by time',
    });
  }
  if (source === 'crm' && mapped.every((m) => m.productIds === undefined)) {
    notes.push({
      code: 'no-product-refs',
      message:
        'the mapping maps no productIds: envelopes carry no references and consume reads them with --product-ref-path',
    });
  }
  return { warnings, notes };
}

/** Fetches the first page of a full listing (up to now) and reports on it; stops before the second. */
export async function probe(options: ProbeOptions): Promise<ProbeReport> {
  const { connector, limit } = options;
  const now = options.now?.() ?? new Date();
  const window: FetchWindow = { until: now.toISOString() };
  const iterator = connector.pages(window)[Symbol.asyncIterator]();
  let first: IteratorResult<SourcePage>;
  try {
    first = await iterator.next();
  } finally {
    // Ends the paging (and any request it keeps open) before a second page is asked for.
    await iterator.return?.();
  }
  const page = first.done ? undefined : first.value;
  const readings = page?.readings ?? [];
  const all = readings.map(({ raw, reading }, i) => toProbeRecord(i + 1, raw, reading));
  const { warnings, notes } = assessPage(connector.source, all, now);
  const rejected = all.filter((r) => r.reject).length;
  return {
    source: connector.source,
    window,
    pageRecords: all.length,
    shown: Math.min(limit, all.length),
    mapped: all.length - rejected,
    rejected,
    morePages: page !== undefined && page.cursor !== null && page.cursor !== undefined,
    // Rejects past the limit are shown too: they are what the operator must fix.
    records: all.filter((r, i) => i < limit || r.reject !== undefined),
    warnings,
    notes,
  };
}
