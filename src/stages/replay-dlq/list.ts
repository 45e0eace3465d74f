import type { Kafka } from 'kafkajs';
import { UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { matches, type LetterFilter } from './filter.js';
import { scanDeadLetters } from './reader.js';
import type { StoredLetter } from './letter.js';

export interface ListOptions {
  kafka: Kafka;
  brokers: string[];
  topic: string;
  filter?: LetterFilter;
  /** At most this many letters (after the filters), in partition and offset order. */
  limit?: number;
  logger?: Logger;
}

export interface LetterList {
  topic: string;
  letters: StoredLetter[];
  /** The listing stopped at --limit: more letters may match. */
  limited: boolean;
}

/** Visits the letters matching the filter; `visit` returns false to stop reading. */
async function scanMatching(options: ListOptions, visit: (letter: StoredLetter) => boolean): Promise<void> {
  const filter = options.filter ?? {};
  const { kafka, brokers, topic, logger } = options;
  await scanDeadLetters({ kafka, brokers, topic, offsets: filter.offsets, logger }, (letter) =>
    matches(filter, letter) ? visit(letter) : true,
  );
}

/** The dead letters matching the filter, read without committing anything. */
export async function listDeadLetters(options: ListOptions): Promise<LetterList> {
  const letters: StoredLetter[] = [];
  let limited = false;
  await scanMatching(options, (letter) => {
    if (options.limit !== undefined && letters.length >= options.limit) {
      limited = true;
      return false;
    }
    letters.push(letter);
    return true;
  });
  letters.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  return { topic: options.topic, letters, limited };
}

export interface ErrorClassCount {
  errorClass: string;
  errorCode: string;
  count: number;
  /** The kinds of letter in the group (invalid messages, refused records). */
  kinds: string[];
  firstAt: string;
  lastAt: string;
  /** One message of the group, to say what it is about. */
  example: string;
}

export interface LetterCounts {
  topic: string;
  total: number;
  byErrorClass: ErrorClassCount[];
}

/** A per-error-class summary of the matching letters; values are not kept, so any depth fits in memory. */
export async function countDeadLetters(options: ListOptions): Promise<LetterCounts> {
  const groups = new Map<string, ErrorClassCount>();
  let total = 0;
  await scanMatching(options, (letter) => {
    if (options.limit !== undefined && total >= options.limit) return false;
    total++;
    const id = `${letter.error.class}\u0000${letter.error.code}`;
    const group = groups.get(id);
    if (!group) {
      groups.set(id, {
        errorClass: letter.error.class,
        errorCode: letter.error.code,
        count: 1,
        kinds: [letter.kind],
        firstAt: letter.deadLetteredAt,
        lastAt: letter.deadLetteredAt,
        example: letter.error.message,
      });
      return true;
    }
    group.count++;
    if (!group.kinds.includes(letter.kind)) group.kinds.push(letter.kind);
    if (letter.deadLetteredAt < group.firstAt) group.firstAt = letter.deadLetteredAt;
    if (letter.deadLetteredAt > group.lastAt) group.lastAt = letter.deadLetteredAt;
    return true;
  });
  const byErrorClass = [...groups.values()].sort(
    (a, b) => b.count - a.count || a.errorClass.localeCompare(b.errorClass),
  );
  return { topic: options.topic, total, byErrorClass };
}

/** The letter at one dead-letter partition and offset. */
export async function showDeadLetter(
  options: Omit<ListOptions, 'filter' | 'limit'> & { partition: number; offset: string },
): Promise<StoredLetter> {
  if (!/^\d+$/.test(options.offset))
    throw new UsageError(`--show must be an offset (a number), got "${options.offset}"`);
  const offset = BigInt(options.offset);
  let found: StoredLetter | undefined;
  const ends = await scanDeadLetters(
    {
      kafka: options.kafka,
      brokers: options.brokers,
      topic: options.topic,
      offsets: [{ partition: options.partition, from: offset, to: offset }],
      logger: options.logger,
    },
    (letter) => {
      if (letter.partition !== options.partition || BigInt(letter.offset) !== offset) return true;
      found = letter;
      return false;
    },
  );
  if (!found) {
    const end = ends.get(options.partition);
    const where = end === undefined ? 'no such partition' : `offsets ${end.low}–${end.high - 1n} exist`;
    throw new UsageError(
      `no dead letter at ${options.topic}[${options.partition}]@${options.offset} (${where})`,
    );
  }
  return found;
}
