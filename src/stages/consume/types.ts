import type { Kafka } from 'kafkajs';
import type { AnalyticsSink } from '../../connectors/sink.js';
import type { ExitCode, SyncError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { CONSUME_SETTINGS } from '../../settings/index.js';
import type { Db } from '../../state/db.js';
import type { DrainCounters } from './drain.js';
import type { LagReport } from './offsets.js';

export const CONSUME_DEFAULTS = {
  group: CONSUME_SETTINGS.group.default,
  batchSize: CONSUME_SETTINGS.batchSize.default,
  idleTimeoutMs: CONSUME_SETTINGS.idleTimeout.default * 1000,
  shutdownTimeoutMs: CONSUME_SETTINGS.shutdownTimeout.default * 1000,
  leaseMs: 60_000,
  sessionTimeoutMs: CONSUME_SETTINGS.sessionTimeout.default * 1000,
  maxDeliveryDelayMs: CONSUME_SETTINGS.maxDeliveryDelay.default * 1000,
  /** Dirty marks per delivery round before a drain is due regardless of age, in Analytics batches. */
  backlogBatches: 20,
  /** How long start-up keeps retrying a group coordinator that is not ready yet (a broker just started). */
  startupRetryMs: 30_000,
} as const;

export interface ConsumeOptions {
  kafka: Kafka;
  brokers: string[];
  /** The state store (merge tables, outbox, ledger). Opened and closed by the caller. */
  db: Db;
  sink: AnalyticsSink;
  group?: string;
  customerTopic?: string;
  productTopic?: string;
  deadLetterTopic?: string;
  /** Drain to the end offsets seen at start, then finish (cron). Otherwise run until `signal`. */
  once?: boolean;
  /** Unified records per Analytics request. */
  batchSize?: number;
  /** Where customer records list product ids (default `productIds`). */
  productRefPath?: string;
  /** A message whose value is larger is dead-lettered, not merged (--max-record-bytes). */
  maxRecordBytes?: number;
  /** Stops the run: the batch in flight is finished, what was merged delivered and committed first. */
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * --once: give up (exit 75) when neither this instance nor the group made progress for this long
   * although the end offsets seen at start are not reached.
   */
  idleTimeoutMs?: number;
  /**
   * How long a stop may wait for the batch in flight and the delivery of what was merged before
   * giving up on them (what is not committed is read again by the next run).
   */
  shutdownTimeoutMs?: number;
  /**
   * Kafka's session timeout: how long the group waits for a silent member (a killed instance)
   * before giving its partitions to others.
   */
  sessionTimeoutMs?: number;
  /** How long a claim on dirty customers lasts without renewal before another instance may take them. */
  leaseMs?: number;
  /**
   * Deferred delivery: merged Kafka batches wait at most this long for the drain that delivers the
   * customers they marked (and commits their offsets). 0 delivers after every batch.
   */
  maxDeliveryDelayMs?: number;
  /**
   * Deferred delivery: a drain is also due once this many customer marks were set since the last
   * one (default `backlogBatches` × `batchSize`).
   */
  deliveryBacklog?: number;
  /**
   * Start-up (reading offsets, joining the group): how long a group coordinator that is still
   * loading or not elected yet is waited for before the run fails (exit 75).
   */
  startupRetryMs?: number;
  /** Called about twice a second with the counts so far (a terminal's progress line). */
  onProgress?: (progress: ConsumeProgress) => void;
}

export interface ConsumeProgress {
  consumed: number;
  delivered: number;
  deadLettered: number;
  /** With --once: messages up to the end offsets seen at start not read yet; else null. */
  lagLeft: number | null;
}

export type ConsumeStatus = 'completed' | 'stopped' | 'failed';
export type FinishReason = 'end-offsets' | 'idle-timeout' | 'signal' | 'error';

export interface ConsumeTopics {
  customers: string;
  products: string;
  deadLetter: string;
}

/** Everything a run counts; the drain adds the delivery side. */
export interface ConsumeCounters extends DrainCounters {
  consumed: number;
  tombstones: number;
  merged: number;
  unchanged: number;
  stale: number;
  dirtied: number;
  deadLetteredMessages: number;
  commits: number;
}

export function newCounters(): ConsumeCounters {
  return {
    consumed: 0,
    tombstones: 0,
    merged: 0,
    unchanged: 0,
    stale: 0,
    dirtied: 0,
    delivered: 0,
    skippedDuplicate: 0,
    deadLetteredRecords: 0,
    deadLetteredMessages: 0,
    retries: 0,
    sinkBatches: 0,
    commits: 0,
  };
}

export interface ConsumeSummary {
  group: string;
  topics: ConsumeTopics;
  once: boolean;
  status: ConsumeStatus;
  finishedBy: FinishReason;
  /** Kafka messages read from the data topics. */
  consumed: number;
  /** Of those, tombstones (null values: deletes). */
  tombstones: number;
  /** Envelopes that changed the merged state. */
  merged: number;
  /** Versions already merged (replays, re-fetches of unchanged data). */
  unchanged: number;
  /** Older versions ignored because a newer one is merged. */
  stale: number;
  /** Customer dirty marks set (a product change marks every customer referencing it). */
  dirtied: number;
  /** Unified records (and deletes) Analytics acknowledged. */
  delivered: number;
  /** Unified records not sent because Analytics already has that exact version. */
  skippedDuplicate: number;
  /** Everything dead-lettered: invalid messages plus records Analytics refused. */
  deadLettered: number;
  deadLetteredMessages: number;
  deadLetteredRecords: number;
  /** Analytics request retries (inside the sink). */
  retries: number;
  sinkBatches: number;
  commits: number;
  /** Messages on the data topics not yet committed by the group, at the end. */
  lagLeft: LagReport | null;
  /** Customers still waiting in the outbox at the end (delivered by the next run). */
  pendingDeliveries: number | null;
  durationMs: number;
  /** The error the run stopped on; printed by --json as {code, message, hint, retryable, exitCode}. */
  error: SyncError | null;
  exitCode: ExitCode;
}
