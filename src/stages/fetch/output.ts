import { open, stat, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { InputError } from '../../errors.js';
import { KafkaPublisher } from '../../connectors/kafka-publisher.js';
import type { Envelope } from '../../records/envelope.js';
import type { Logger } from '../../log.js';
import { Serial } from '../../io/serial.js';

/** Where a file output stood after a durable write: a resumed run truncates back to it. */
export interface OutputMark {
  path: string;
  bytes: number;
}

/**
 * Where fetched envelopes go. `write` resolves only once the envelopes are durable — fsynced,
 * handed to the OS by stdout, or acknowledged by Kafka — because a checkpoint follows it.
 */
export interface FetchOutput {
  readonly kind: 'stdout' | 'file' | 'kafka';
  readonly target: string;
  write(envelopes: Envelope[]): Promise<OutputMark | undefined>;
  /**
   * Why this output cannot take an envelope (a Kafka topic's size limit), or undefined when it can.
   * The caller sends such envelopes to the reject file instead of writing them.
   */
  refuse?(envelope: Envelope): string | undefined;
  close(): Promise<void>;
}

export type OutputSpec =
  | { kind: 'stdout'; stream?: Writable }
  | { kind: 'file'; path: string }
  | { kind: 'kafka'; kafka: Kafka; brokers: string[]; topic: string };

const serialised = new WeakMap<Envelope, string>();

/** An envelope's JSON, made once however many size checks and outputs ask for it. */
export function envelopeJson(envelope: Envelope): string {
  let value = serialised.get(envelope);
  if (value === undefined) {
    value = JSON.stringify(envelope);
    serialised.set(envelope, value);
  }
  return value;
}

function ndjson(envelopes: Envelope[]): Buffer {
  return Buffer.from(envelopes.map(envelopeJson).join('\n') + '\n', 'utf8');
}

class StdoutOutput implements FetchOutput {
  readonly kind = 'stdout' as const;
  readonly target = 'stdout';
  private failure: Error | undefined;
  private readonly onError = (err: Error) => {
    this.failure = err;
  };

  constructor(private readonly stream: Writable) {
    // An EPIPE (reader went away) must become a clean stop, not an unhandled 'error' event.
    stream.on('error', this.onError);
  }

  write(envelopes: Envelope[]): Promise<undefined> {
    if (this.failure) return Promise.reject(this.outputError(this.failure));
    return new Promise((resolvePromise, reject) => {
      this.stream.write(ndjson(envelopes), (err) => {
        const failure = err ?? this.failure;
        if (failure) reject(this.outputError(failure));
        else resolvePromise(undefined);
      });
    });
  }

  private outputError(err: Error): InputError {
    return new InputError(`cannot write to stdout: ${err.message}`, { cause: err });
  }

  async close(): Promise<void> {
    this.stream.off('error', this.onError);
  }
}

class FileOutput implements FetchOutput {
  readonly kind = 'file' as const;
  private readonly serial = new Serial();

  private constructor(
    private readonly handle: FileHandle,
    readonly target: string,
    private position: number,
  ) {}

  /**
   * A fresh run truncates the file. A resumed run keeps what earlier runs made durable (up to `resumeAt`)
   * and cuts off anything after it: a page written but never checkpointed, or half a line from a kill.
   */
  static async open(path: string, resumeAt: number | undefined, logger?: Logger): Promise<FileOutput> {
    const target = resolve(path);
    try {
      if (resumeAt === undefined) return new FileOutput(await open(target, 'w'), target, 0);
      const size = await stat(target).then(
        (s) => s.size,
        () => -1,
      );
      if (size < 0) {
        logger?.warn(`${target} is gone; records fetched before the interruption are not in the new file`);
        return new FileOutput(await open(target, 'w'), target, 0);
      }
      const handle = await open(target, 'r+');
      if (size < resumeAt) {
        logger?.warn(
          `${target} is shorter than when the interrupted run stopped; appending after its current end`,
        );
        return new FileOutput(handle, target, size);
      }
      await handle.truncate(resumeAt);
      await handle.datasync();
      return new FileOutput(handle, target, resumeAt);
    } catch (err) {
      throw new InputError(`cannot open ${target} for writing: ${(err as Error).message}`, { cause: err });
    }
  }

  write(envelopes: Envelope[]): Promise<OutputMark> {
    return this.serial.run(async () => {
      const buf = ndjson(envelopes);
      let written = 0;
      while (written < buf.length) {
        const { bytesWritten } = await this.handle.write(
          buf,
          written,
          buf.length - written,
          this.position + written,
        );
        written += bytesWritten;
      }
      await this.handle.datasync();
      this.position += buf.length;
      return { path: this.target, bytes: this.position };
    });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

class KafkaOutput implements FetchOutput {
  readonly kind = 'kafka' as const;
  private readonly serial = new Serial();

  constructor(private readonly publisher: KafkaPublisher) {}

  get target(): string {
    return this.publisher.topic;
  }

  /** Sends a page; resolves once every record is acknowledged (acks=all). */
  write(envelopes: Envelope[]): Promise<undefined> {
    // One page at a time: the idempotent producer keeps its per-partition sequence numbers in order.
    return this.serial.run(async () => {
      const values = envelopes.map(envelopeJson);
      await this.publisher.publish(envelopes, values);
      return undefined;
    });
  }

  refuse(envelope: Envelope): string | undefined {
    return this.publisher.sizeProblem(envelope, envelopeJson(envelope));
  }

  async close(): Promise<void> {
    await this.publisher.close();
  }
}

export async function openOutput(
  spec: OutputSpec,
  resumeAt: number | undefined,
  logger?: Logger,
): Promise<FetchOutput> {
  switch (spec.kind) {
    case 'stdout':
      return new StdoutOutput(spec.stream ?? process.stdout);
    case 'file':
      return FileOutput.open(spec.path, resumeAt, logger);
    case 'kafka': {
      const publisher = new KafkaPublisher(spec.kafka, spec.brokers, spec.topic, logger);
      try {
        await publisher.connect();
      } catch (err) {
        await publisher.close();
        throw err;
      }
      return new KafkaOutput(publisher);
    }
  }
}
