import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { DeadLetter, DeadLetterProducer } from '../../connectors/dead-letter.js';
import type { Logger } from '../../log.js';
import type { Entity } from '../../records/envelope.js';
import type { MergeItem, MergeStore } from '../../state/merge-store.js';
import { decodeMessage } from './decode.js';
import type { DeliveryScheduler } from './delivery.js';
import type { GroupMembership } from './membership.js';
import type { RunControl } from './run-control.js';
import type { ConsumeCounters, ConsumeTopics } from './types.js';

const MERGE_CHUNK = 500;

type MergeCounters = Pick<
  ConsumeCounters,
  'consumed' | 'tombstones' | 'merged' | 'unchanged' | 'stale' | 'dirtied' | 'deadLetteredMessages'
>;

export interface MergeMessagesOptions {
  store: MergeStore;
  deadLetters: Pick<DeadLetterProducer, 'send'>;
  counters: MergeCounters;
  logger: Logger;
  /** Called between merge chunks, so a long batch keeps the group membership alive. */
  heartbeat: () => Promise<void>;
  /** Larger message values are dead-lettered (--max-record-bytes). */
  maxRecordBytes?: number;
}

/**
 * Merges the messages of one Kafka batch into the state store, in chunks of one transaction each,
 * and sends the invalid ones to the dead-letter topic. Returns the customer dirty marks set.
 */
export async function mergeMessages(
  topic: string,
  partition: number,
  messages: KafkaMessage[],
  entity: Entity,
  o: MergeMessagesOptions,
): Promise<number> {
  const { counters } = o;
  const items: MergeItem[] = [];
  const letters: DeadLetter[] = [];
  for (const message of messages) {
    const decoded = decodeMessage(topic, partition, message, entity, o.maxRecordBytes);
    if (decoded.kind === 'merge') {
      items.push(decoded.item);
      if (decoded.item.envelope === null) counters.tombstones++;
    } else letters.push(decoded.letter);
  }
  counters.consumed += messages.length;
  let marks = 0;
  for (let i = 0; i < items.length; i += MERGE_CHUNK) {
    const result = await o.store.mergeBatch(items.slice(i, i + MERGE_CHUNK));
    for (const outcome of result.outcomes) {
      if (outcome === 'applied') counters.merged++;
      else if (outcome === 'unchanged') counters.unchanged++;
      else counters.stale++;
    }
    counters.dirtied += result.dirtied;
    marks += result.dirtied;
    await o.heartbeat();
  }
  if (letters.length > 0) {
    await o.deadLetters.send(letters);
    counters.deadLetteredMessages += letters.length;
    o.logger.warn(
      `${letters.length} invalid message(s) from ${topic}[${partition}] went to the dead-letter topic`,
    );
  }
  return marks;
}

export interface BatchHandlerOptions {
  store: MergeStore;
  deadLetters: DeadLetterProducer;
  topics: ConsumeTopics;
  counters: ConsumeCounters;
  logger: Logger;
  control: RunControl;
  membership: GroupMembership;
  delivery: DeliveryScheduler;
  maxRecordBytes?: number;
}

/**
 * One Kafka batch, start to end: merged (and dead-lettered), its fetch position moved on, its offset
 * owed to the delivery scheduler, and the drain run inside the batch when one is due.
 */
export class BatchHandler {
  private readonly entityOf: Record<string, Entity>;

  constructor(private readonly o: BatchHandlerOptions) {
    this.entityOf = { [o.topics.customers]: 'customer', [o.topics.products]: 'product' };
  }

  async handle(payload: EachBatchPayload, heartbeat: () => Promise<void>): Promise<void> {
    const { control, membership, delivery } = this.o;
    const { batch } = payload;
    // A rebalance seen while merging does not stop the batch: merged (and dead-lettered) it is
    // owed like any other, and the hand-over may still deliver and commit it.
    let revoked: unknown;
    const mergeHeartbeat = async () => {
      try {
        await heartbeat();
      } catch (err) {
        if (!membership.isGroupError(err)) throw err;
        revoked ??= err;
      }
    };
    const entity = this.entityOf[batch.topic];
    if (entity === undefined) return;
    const marks = await mergeMessages(batch.topic, batch.partition, batch.messages, entity, {
      store: this.o.store,
      deadLetters: this.o.deadLetters,
      counters: this.o.counters,
      logger: this.o.logger,
      heartbeat: mergeHeartbeat,
      ...(this.o.maxRecordBytes === undefined ? {} : { maxRecordBytes: this.o.maxRecordBytes }),
    });
    // A partition taken away mid-batch (rebalance) is read again by its new owner.
    if (control.halted || payload.isStale()) return;
    // The fetch position moves on now; the commit waits for the drain that delivers these marks.
    const last = batch.messages[batch.messages.length - 1];
    if (last) payload.resolveOffset(last.offset);
    delivery.noteMerged(batch.topic, batch.partition, BigInt(batch.lastOffset()) + 1n, marks);
    if (revoked !== undefined) throw revoked;
    await delivery.afterBatch(payload, heartbeat);
    membership.updateProductPhase();
  }
}
