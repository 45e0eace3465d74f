import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { InputError } from '../errors.js';
import { describeFsError } from '../paths.js';
import {
  KafkaPublisher,
  MAX_REQUEST_BYTES,
  MAX_REQUEST_RECORDS,
  prepareMessage,
  sizeProblem,
  tooLargeReason,
  type PreparedMessage,
} from '../connectors/kafka-publisher.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type MessageSizeLimit } from '../connectors/kafka.js';
import type { Logger } from '../log.js';
import { readRawLines } from '../io/lines.js';
import { RejectFile, type Reject } from '../io/reject-file.js';
import { parseEnvelopeLine, TOPIC_OF } from '../records/envelope.js';
import { recordSizeProblem } from '../records/size-limit.js';

export interface PublishOptions {
  kafka: Kafka;
  brokers: string[];
  topic: string;
  /** A file path, or a readable stream such as stdin. */
  input: string | Readable;
  rejectsPath: string;
  dryRun?: boolean;
  /** Records per producer request; memory holds at most one batch. */
  batchSize?: number;
  maxBatchBytes?: number;
  /** A longer line goes to the reject file, never held whole (--max-record-bytes). */
  maxRecordBytes?: number;
  onProgress?: (published: number) => void;
  logger?: Logger;
}

export interface PublishSummary {
  topic: string;
  dryRun: boolean;
  lines: number;
  records: number;
  bytes: number;
  partitions: Record<string, number>;
  rejects: number;
  rejectsFile: string | null;
  durationMs: number;
}

const TOPIC_ENTITY: Record<string, string> = {
  [TOPIC_OF.crm]: 'customer',
  [TOPIC_OF.inventory]: 'product',
};

/** Streams NDJSON envelopes into a topic; bad lines go to the reject file and never stop the good ones. */
export async function publish(options: PublishOptions): Promise<PublishSummary> {
  const started = Date.now();
  const batchSize = options.batchSize ?? MAX_REQUEST_RECORDS;
  const maxBatchBytes = options.maxBatchBytes ?? MAX_REQUEST_BYTES;
  const dryRun = options.dryRun ?? false;
  let input: Readable;
  if (typeof options.input === 'string') {
    await access(options.input).catch((err: unknown) => {
      // Node's own text repeats the path ("ENOENT: …, access '/x'"); say it once, plainly.
      const why =
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (ENOENT)' : describeFsError(err);
      throw new InputError(`cannot read the input file ${options.input}: ${why}`, { cause: err });
    });
    input = createReadStream(options.input, { highWaterMark: 256 * 1024 });
  } else {
    input = options.input;
  }
  const rejects = new RejectFile<Reject & { line: number }>(options.rejectsPath);
  const publisher = dryRun
    ? undefined
    : new KafkaPublisher(options.kafka, options.brokers, options.topic, options.logger);
  const summary: PublishSummary = {
    topic: options.topic,
    dryRun,
    lines: 0,
    records: 0,
    bytes: 0,
    partitions: {},
    rejects: 0,
    rejectsFile: null,
    durationMs: 0,
  };
  const expectedEntity = TOPIC_ENTITY[options.topic];
  let batch: PreparedMessage[] = [];
  let batchBytes = 0;
  // The batch being sent while the next one is read and validated. The idempotent producer has one
  // request in flight anyway; this overlaps our CPU work with that wait instead of idling through it.
  let inFlight: Promise<void> | undefined;

  const send = async (toSend: PreparedMessage[]) => {
    const result = await publisher!.publishPrepared(toSend);
    summary.records += result.records;
    summary.bytes += result.bytes;
    for (const [p, n] of Object.entries(result.partitions))
      summary.partitions[p] = (summary.partitions[p] ?? 0) + n;
    options.onProgress?.(summary.records);
  };

  const flush = async () => {
    if (batch.length === 0) return;
    const toSend = batch;
    const toSendBytes = batchBytes;
    batch = [];
    batchBytes = 0;
    if (!publisher) {
      summary.records += toSend.length;
      summary.bytes += toSendBytes;
      return;
    }
    // Batches go out in order, one after the other; a failed one fails the run here.
    await inFlight;
    inFlight = send(toSend);
    // Observed by the next flush (or the end); until then it must not count as unhandled.
    inFlight.catch(() => {});
  };

  try {
    await publisher?.connect();
    // A dry run does not ask the broker, so it checks sizes against Kafka's default limit.
    const limit: MessageSizeLimit = publisher?.limit ?? { bytes: DEFAULT_MAX_MESSAGE_BYTES, from: 'default' };
    // A line longer than either limit cannot be published, so it is never held in memory whole.
    const maxLineBytes = Math.min(limit.bytes, options.maxRecordBytes ?? Number.POSITIVE_INFINITY);
    for await (const line of readRawLines(input, { maxLineBytes })) {
      const { lineNo, bytes } = line;
      summary.lines = lineNo;
      if (line.tooLong) {
        await rejects.add({
          line: lineNo,
          // The reason names the limit that cut the line: the smaller of the two.
          reason:
            maxLineBytes < limit.bytes
              ? (recordSizeProblem(line.length, options.maxRecordBytes) as string)
              : tooLargeReason(line.length, limit, options.topic),
          raw: `${bytes.toString('utf8')}…`,
        });
        continue;
      }
      if (bytes.length === 0 || bytes.every((b) => b === 0x20 || b === 0x09)) continue;
      const parsed = parseEnvelopeLine(bytes);
      let reason: string | undefined;
      if (!parsed.ok) reason = parsed.reason;
      else if (expectedEntity !== undefined && parsed.envelope.entity !== expectedEntity) {
        reason = `a ${parsed.envelope.entity} envelope does not belong on topic ${options.topic}`;
      }
      // The value sent is the validated line's own bytes: no re-serialising, no re-encoding.
      const prepared = parsed.ok && reason === undefined ? prepareMessage(parsed.envelope, bytes) : undefined;
      reason ??= prepared && sizeProblem(prepared, limit, options.topic);
      if (reason !== undefined || prepared === undefined) {
        await rejects.add({ line: lineNo, reason: reason ?? 'invalid', raw: bytes.toString('utf8') });
        continue;
      }
      batch.push(prepared);
      batchBytes += bytes.length;
      if (batch.length >= batchSize || batchBytes >= maxBatchBytes) await flush();
    }
    await flush();
    await inFlight;
  } finally {
    // A batch still in flight after a failure elsewhere is finished (or failed) before closing.
    await inFlight?.catch(() => {});
    await rejects.close();
    await publisher?.close();
    input.destroy();
  }
  summary.rejects = rejects.count;
  summary.rejectsFile = rejects.count > 0 ? rejects.path : null;
  summary.durationMs = Date.now() - started;
  return summary;
}
