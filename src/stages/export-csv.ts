/**
 * `export-csv`: the current unified view (or the customer or product rows) as RFC 4180 CSV, streamed
 * from the state store with flat memory through csv-stringify, to a file (written to a temporary
 * file and renamed when complete), to a stream (stdout), and/or uploaded to Analytics.
 *
 * The upload's Idempotency-Key is the sha256 of the CSV bytes: exporting and uploading the same view
 * again sends the same key, which Analytics acknowledges without storing the upload twice, while a
 * changed view is a new upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { stringify } from 'csv-stringify';
import { uploadCsv, type AnalyticsConfig, type UploadResult } from '../connectors/analytics-sink.js';
import { InterruptedError, UsageError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { Checkpoints } from '../state/checkpoints.js';
import type { Db } from '../state/db.js';
import { readEntities, readUnifiedView } from '../state/export-reader.js';
import {
  entityColumns,
  escapeFormula,
  explode,
  explodedColumns,
  unifiedColumns,
  type Cell,
  type ExportEntity,
} from './export-csv-columns.js';

export type { ExportEntity } from './export-csv-columns.js';

export interface ExportCsvOptions {
  db: Db;
  entity: ExportEntity;
  /** Column names (--columns); the documented default list when undefined. */
  columns?: string[];
  /** One row per customer-product pair (unified view only). */
  explode?: boolean;
  bom?: boolean;
  /** Neutralise cells a spreadsheet would execute (default true). */
  formulaEscape?: boolean;
  gzip?: boolean;
  /** Write here (atomically); otherwise to `stdout` unless uploading. */
  out?: string;
  stdout?: Writable;
  /** An ISO time, or 'last' for the time the last completed export of this entity started. */
  since?: string;
  upload?: AnalyticsConfig;
  productRefPath?: string;
  /** Rows per state-store query (memory is proportional to it). */
  pageSize?: number;
  logger?: Logger;
  /** Stops the export (shutdown): nothing is renamed or uploaded, and it throws InterruptedError. */
  signal?: AbortSignal;
  /** Called with the rows written so far (every row; callers throttle), then once uploading. */
  onProgress?: (progress: { rows: number; uploading: boolean }) => void;
}

export interface ExportCsvSummary {
  entity: ExportEntity;
  exploded: boolean;
  rows: number;
  columns: string[];
  /** Bytes of CSV (before gzip). */
  bytes: number;
  sha256: string;
  out: string | null;
  since: string | null;
  /** When this export started reading: the next `--since last` starts here. */
  startedAt: string;
  upload: (UploadResult & { idempotencyKey: string }) | null;
  durationMs: number;
}

type Stage = NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream;

const checkpointName = (entity: ExportEntity) => `export-csv:${entity}`;

/** Parses --since: an ISO date/time (UTC unless an offset is given), or `last`. */
export async function resolveSince(
  db: Db,
  entity: ExportEntity,
  since: string | undefined,
): Promise<string | null> {
  if (since === undefined) return null;
  if (since === 'last') {
    const checkpoints = await Checkpoints.open(db);
    const last = await checkpoints.get<{ startedAt: string }>(checkpointName(entity));
    return last?.startedAt ?? null;
  }
  const withZone = /[zZ]|[+-]\d\d:?\d\d$/.test(since) || !since.includes('T') ? since : `${since}Z`;
  const ms = Date.parse(withZone);
  if (Number.isNaN(ms)) {
    throw new UsageError(`--since "${since}" is not an ISO date/time or "last"`, {
      hint: 'e.g. --since 2026-01-31, --since 2026-01-31T12:00:00Z or --since last',
    });
  }
  return new Date(ms).toISOString();
}

function rowsOf(
  options: ExportCsvOptions,
  since: string | null,
): { names: string[]; rows: AsyncGenerator<Cell[]> } {
  const read = {
    ...(since === null ? {} : { since }),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  };
  if (options.entity === 'unified') {
    const refs = options.productRefPath === undefined ? {} : { productRefPath: options.productRefPath };
    if (options.explode) {
      const set = explodedColumns(options.columns);
      return {
        names: set.names,
        rows: (async function* () {
          for await (const row of readUnifiedView(options.db, { ...read, ...refs })) {
            for (const pair of explode(row)) yield set.cells(pair);
          }
        })(),
      };
    }
    const set = unifiedColumns(options.columns);
    return {
      names: set.names,
      rows: (async function* () {
        for await (const row of readUnifiedView(options.db, { ...read, ...refs })) yield set.cells(row);
      })(),
    };
  }
  if (options.explode)
    throw new UsageError('--explode applies to the unified view only, not --entity ' + options.entity);
  const set = entityColumns(options.entity, options.columns);
  const entity = options.entity === 'customers' ? 'customer' : 'product';
  return {
    names: set.names,
    rows: (async function* () {
      for await (const row of readEntities(options.db, entity, read)) yield set.cells(row);
    })(),
  };
}

/** Counts and hashes the CSV bytes as they pass. */
function digest() {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/** Writes `source` to `path` through a hidden temporary file in the same directory, fsynced then renamed. */
async function writeAtomically(path: string, streams: Stage[], signal?: AbortSignal): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    await pipeline([...streams, createWriteStream(temp, { flags: 'wx' })], signal ? { signal } : {});
    const handle = await open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

const interrupted = () =>
  new InterruptedError('export-csv stopped by a signal: --out was left as it was, nothing was uploaded', {
    hint: 'run the same command again',
  });

export async function exportCsv(options: ExportCsvOptions): Promise<ExportCsvSummary> {
  const started = Date.now();
  const logger = options.logger ?? silentLogger;
  const startedAt = new Date(started).toISOString();
  const since = await resolveSince(options.db, options.entity, options.since);
  if (options.since === 'last' && since === null)
    logger.info('no earlier export of this entity: exporting everything');
  const { names, rows } = rowsOf(options, since);
  const escape = options.formulaEscape ?? true;
  let count = 0;
  const counted = async function* () {
    for await (const cells of rows) {
      count++;
      options.onProgress?.({ rows: count, uploading: false });
      yield cells;
    }
  };
  const csv = stringify({
    header: true,
    columns: names,
    bom: options.bom ?? false,
    // RFC 4180: CRLF between records; cells with a separator, quote or line break are quoted.
    record_delimiter: 'windows',
    // Setting record_delimiter turns this off by default: a cell with a bare CR or LF would go unquoted.
    quote_record_delimiter: true,
    escape_formulas: false,
    cast: {
      boolean: (value) => (value ? 'true' : 'false'),
      string: (value) => (escape ? escapeFormula(value) : value),
    },
  });
  const hashed = digest();
  const source: Stage[] = [Readable.from(counted()), csv, hashed.stream];
  const gzip = (): Stage[] => (options.gzip ? [createGzip()] : []);
  const stop = options.signal ? { signal: options.signal } : {};
  let spoolDir: string | undefined;
  let upload: ExportCsvSummary['upload'] = null;
  try {
    let uploadPath: string | undefined;
    if (options.upload && (options.out === undefined || options.gzip)) {
      // The upload needs the plain CSV as a file it can send again on a retry.
      spoolDir = await mkdtemp(join(tmpdir(), 'syncctl-export-'));
      uploadPath = join(spoolDir, 'export.csv');
      await pipeline([...source, createWriteStream(uploadPath)], stop);
      if (options.out !== undefined)
        await writeAtomically(options.out, [createReadStream(uploadPath), ...gzip()], options.signal);
    } else if (options.out !== undefined) {
      await writeAtomically(options.out, [...source, ...gzip()], options.signal);
      uploadPath = options.out;
    } else {
      if (!options.stdout) throw new UsageError('export-csv needs --out, --upload or an output stream');
      await pipeline([...source, ...gzip(), options.stdout], { ...stop, end: false });
    }
    const { bytes, sha256 } = hashed.result();
    if (options.upload && uploadPath !== undefined) {
      const idempotencyKey = `export-csv-${sha256}`;
      if (options.signal?.aborted) throw interrupted();
      options.onProgress?.({ rows: count, uploading: true });
      const result = await uploadCsv(options.upload, uploadPath, idempotencyKey, logger);
      upload = { ...result, idempotencyKey };
    }
    const checkpoints = await Checkpoints.open(options.db);
    await checkpoints.set(checkpointName(options.entity), { startedAt, rows: count, sha256 });
    return {
      entity: options.entity,
      exploded: options.explode ?? false,
      rows: count,
      columns: names,
      bytes,
      sha256,
      out: options.out ?? null,
      since,
      startedAt,
      upload,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    if (options.signal?.aborted && !(err instanceof InterruptedError)) throw interrupted();
    throw err;
  } finally {
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  }
}
