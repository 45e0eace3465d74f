import type { DeadLetter, DeadLetterProducer } from '../../connectors/dead-letter.js';
import type { AnalyticsSink, SinkRecord } from '../../connectors/sink.js';
import { ExitCode, InterruptedError, SyncError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { batchKeyOf } from '../../merge/unified.js';
import type { Claim, Completion, MergeStore, SourcePosition } from '../../state/merge-store.js';

/** Delivery counters the drain adds to; the stage's summary reads them. */
export interface DrainCounters {
  delivered: number;
  skippedDuplicate: number;
  deadLetteredRecords: number;
  retries: number;
  sinkBatches: number;
}

export function newDrainCounters(): DrainCounters {
  return { delivered: 0, skippedDuplicate: 0, deadLetteredRecords: 0, retries: 0, sinkBatches: 0 };
}

export interface DrainerOptions {
  store: MergeStore;
  sink: AnalyticsSink;
  deadLetters: DeadLetterProducer;
  owner: string;
  batchSize: number;
  leaseMs: number;
  customerTopic: string;
  logger: Logger;
  counters: DrainCounters;
  /** Attempts already spent on a customer's record (replay-dlq): a refusal now adds to them. */
  attemptsBefore?: ReadonlyMap<string, number>;
}

export interface DrainUntil {
  /**
   * Done once nothing marked at or before this outbox generation is dirty any more (delivered by
   * this instance or another). null: done as soon as nothing is left to claim.
   */
  gen: number | null;
  /** Called between deliveries and while waiting for other instances. */
  heartbeat: () => Promise<void>;
  /** Checked before every round and while waiting for other instances' claims; true gives up (the caller will not commit). */
  cancelled?: () => boolean;
  /** At most this many delivery rounds (claim + deliver), then return even if more is dirty. */
  maxRounds?: number;
}

const WAIT_MS = 200;

/**
 * Drains the outbox: claims dirty customers, builds their unified records, skips what the ledger
 * says Analytics already has, delivers the rest through the sink, dead-letters what Analytics
 * refuses for good, and records all of it in the ledger while clearing the dirty marks.
 */
export class Drainer {
  constructor(private readonly o: DrainerOptions) {}

  async drain(until: DrainUntil): Promise<void> {
    for (let rounds = 0; ;) {
      if (until.maxRounds !== undefined && rounds >= until.maxRounds) return;
      if (until.cancelled?.()) throw new InterruptedError('stopped before the outbox was drained');
      if (until.gen !== null && (await this.o.store.pendingUpTo(until.gen)) === 0) return;
      const claims = await this.o.store.claim(this.o.owner, this.o.batchSize, this.o.leaseMs);
      if (claims.length === 0) {
        if (until.gen === null) return;
        // Rows are claimed by someone else: wait for them, unless their owner died on this host.
        if ((await this.o.store.releaseDeadOwners(this.o.owner)) > 0) continue;
        await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
        await until.heartbeat();
        continue;
      }
      rounds++;
      await this.deliverClaims(claims);
      await until.heartbeat();
    }
  }

  private async deliverClaims(claims: Claim[]): Promise<void> {
    const { store, owner, counters } = this.o;
    try {
      const ids = claims.map((c) => c.customerId);
      const built = await store.buildUnified(ids);
      const ledger = await store.ledger(ids);
      const completions: Completion[] = [];
      const toSend: { claim: Claim; record: SinkRecord; hash: string; source: SourcePosition | null }[] = [];
      for (const claim of claims) {
        const entry = built.get(claim.customerId);
        if (!entry) continue;
        const { delivery, source } = entry;
        const last = ledger.get(claim.customerId);
        const alreadyThere =
          last?.deliveredHash === delivery.hash ||
          last?.deadHash === delivery.hash ||
          // Nothing to delete at Analytics: never delivered, or its last delivery was a delete.
          (delivery.sink.op === 'delete' && (last?.deliveredHash == null || last.deliveredOp === 'delete'));
        if (alreadyThere) {
          counters.skippedDuplicate++;
          completions.push({ customerId: claim.customerId, gen: claim.gen, outcome: 'skipped' });
        } else {
          toSend.push({ claim, record: delivery.sink, hash: delivery.hash, source });
        }
      }
      if (toSend.length > 0) {
        const records = toSend.map((t) => t.record);
        const outcome = await this.withRenewal(() => this.o.sink.deliver(records, batchKeyOf(records)));
        counters.sinkBatches++;
        counters.retries += outcome.retries;
        const deliveredKeys = new Set(outcome.delivered.map((r) => r.key));
        const failedByKey = new Map(outcome.failed.map((f) => [f.record.key, f]));
        const letters: DeadLetter[] = [];
        for (const t of toSend) {
          if (deliveredKeys.has(t.record.key)) {
            counters.delivered++;
            completions.push({
              customerId: t.claim.customerId,
              gen: t.claim.gen,
              outcome: 'delivered',
              hash: t.hash,
              key: t.record.key,
              op: t.record.op,
            });
            continue;
          }
          const failure = failedByKey.get(t.record.key);
          if (!failure) {
            throw new SyncError(
              'E_INTERNAL',
              `the Analytics sink reported neither delivery nor failure for record ${t.record.key} (customer ${t.record.customerId})`,
              false,
              ExitCode.Failure,
            );
          }
          letters.push({
            kind: 'unified-record',
            key: t.record.customerId,
            value: JSON.stringify(t.record),
            source: {
              topic: t.source?.topic ?? this.o.customerTopic,
              partition: t.source?.partition ?? null,
              offset: t.source?.offset ?? null,
              key: t.record.customerId,
              timestamp: null,
            },
            error: { class: failure.error.name, code: failure.error.code, message: failure.error.message },
            attempts: failure.attempts + (this.o.attemptsBefore?.get(t.record.customerId) ?? 0),
            recordKey: t.record.key,
            customerId: t.record.customerId,
          });
          completions.push({
            customerId: t.claim.customerId,
            gen: t.claim.gen,
            outcome: 'dead-lettered',
            hash: t.hash,
          });
        }
        // Durable in the dead-letter topic before the ledger says so and the mark is cleared.
        await this.o.deadLetters.send(letters);
        counters.deadLetteredRecords += letters.length;
        if (letters.length > 0) {
          this.o.logger.warn(
            `${letters.length} record(s) refused by Analytics went to the dead-letter topic`,
          );
        }
      }
      await store.complete(owner, completions);
    } catch (err) {
      await store.release(owner).catch(() => {});
      throw err;
    }
  }

  /** Keeps the claims' lease alive while a slow delivery (retries, Retry-After) runs. */
  private async withRenewal<T>(fn: () => Promise<T>): Promise<T> {
    let inFlight: Promise<void> = Promise.resolve();
    const timer = setInterval(
      () => {
        inFlight = this.o.store.renew(this.o.owner, this.o.leaseMs).catch((err: unknown) => {
          this.o.logger.debug(`could not renew delivery claims: ${(err as Error).message}`);
        });
      },
      Math.max(1_000, Math.floor(this.o.leaseMs / 3)),
    );
    try {
      return await fn();
    } finally {
      clearInterval(timer);
      await inFlight;
    }
  }
}
