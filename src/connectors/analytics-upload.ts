import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HTTPError, RequestError } from 'got';
import { SinkTransientError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../redact.js';
import type { AnalyticsConfig } from './analytics-config.js';
import { createClient, httpFailure, sanitized } from './analytics-http.js';
import { ClientTls } from './tls.js';
import { parseRetryAfter } from './retry-policy.js';

export interface UploadResult {
  uploadId: number;
  rows: number;
  bytes: number;
  columns: string[];
  /** True when Analytics already had this upload (same key and content) and answered from its record. */
  replayed: boolean;
  retries: number;
}

/**
 * Uploads a CSV file (path) or stream to /v1/upload/csv under `idempotencyKey`, with the same retry
 * rules as batches. A stream is first spooled to a temporary file so a retry can send it again
 * without holding it in memory.
 */
export async function uploadCsv(
  config: AnalyticsConfig,
  source: string | Readable,
  idempotencyKey: string,
  logger: Logger = silentLogger,
): Promise<UploadResult> {
  // Certificate files are checked before the stream is spooled.
  const tls = new ClientTls('analytics', config.tls);
  let spoolDir: string | undefined;
  let path: string;
  if (typeof source === 'string') path = source;
  else {
    spoolDir = await mkdtemp(join(tmpdir(), 'syncctl-upload-'));
    path = join(spoolDir, 'upload.csv');
    await pipeline(source, createWriteStream(path));
  }
  const agents = { http: new HttpAgent({ keepAlive: false }), https: new HttpsAgent({ keepAlive: false }) };
  const client = createClient(config, logger, agents, tls);
  let attempts = 1;
  try {
    const { size } = await stat(path);
    const response = await client.post('v1/upload/csv', {
      body: createReadStream(path),
      headers: {
        'idempotency-key': idempotencyKey,
        'content-type': 'text/csv',
        'content-length': String(size),
      },
      responseType: 'json',
      hooks: {
        // The first stream was consumed: each retry needs a fresh one (got checks the body changed).
        beforeRetry: [(error) => void (error.options.body = createReadStream(path))],
      },
    });
    attempts = response.retryCount + 1;
    const body = response.body as Partial<UploadResult>;
    return {
      uploadId: Number(body.uploadId),
      rows: Number(body.rows),
      bytes: Number(body.bytes),
      columns: Array.isArray(body.columns) ? body.columns : [],
      replayed: response.headers['idempotent-replayed'] === 'true',
      retries: attempts - 1,
    };
  } catch (err) {
    if (err instanceof RequestError) attempts = (err.request?.retryCount ?? 0) + 1;
    if (err instanceof HTTPError) {
      throw httpFailure(
        err.response.statusCode,
        err.response.body,
        idempotencyKey,
        parseRetryAfter(err.response.headers['retry-after']),
        attempts,
        config.url,
        'upload',
      );
    }
    if (err instanceof RequestError) {
      throw (
        tls.explain(err, config.url, true) ??
        new SinkTransientError(
          redact(
            `Analytics could not be reached for upload ${idempotencyKey} after ${attempts} attempts: ${err.message}`,
          ),
          { cause: sanitized(err), details: { code: err.code } },
        )
      );
    }
    throw err;
  } finally {
    agents.http.destroy();
    agents.https.destroy();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  }
}
