import type { SyncError } from '../errors.js';

/** One record bound for Analytics: a unified customer record, or the delete of one. */
export interface SinkRecord {
  /** Per-record idempotency key (stable for the same unified-record version). */
  key: string;
  customerId: string;
  op: 'upsert' | 'delete';
  /** The unified record (schemas/unified-record.schema.json); null for deletes. */
  record: Record<string, unknown> | null;
}

export interface SinkFailure {
  record: SinkRecord;
  error: SyncError;
  attempts: number;
}

export interface DeliveryOutcome {
  delivered: SinkRecord[];
  /** Records that failed permanently (e.g. 400 for that record): candidates for the dead-letter topic. */
  failed: SinkFailure[];
  retries: number;
}

/**
 * Analytics delivery. `deliver` retries transient failures itself (bounded, backoff with jitter,
 * Retry-After) and throws a retryable SyncError only when the whole batch could not be delivered;
 * per-record permanent failures come back in `failed` so the rest of the batch still lands.
 */
export interface AnalyticsSink {
  deliver(records: SinkRecord[], batchKey: string): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}
