/**
 * What every fault scenario reports (`npm run test:faults` gathers them into bench/results/faults.md
 * and .json). Scenarios live in test/faults/*.faults.ts; each ends by comparing Analytics with an
 * independent join of the source data (not with syncctl's own state) and calls recordFaultReport.
 */
import { appendFileSync } from 'node:fs';

export interface FaultReport {
  /** Stable id, e.g. `consumer-sigkill`. */
  scenario: string;
  /** One line an operator can read: the fault and the load. */
  description: string;
  /** Records the independent join says Analytics should hold. */
  expected: number;
  /** Records Analytics holds that match the join. */
  delivered: number;
  /** Goal 0: expected but absent or different at Analytics. */
  missing: number;
  /** Goal 0: the same record key, or the same content for a customer, stored more than once. */
  storedTwice: number;
  /** Dead-lettered messages by reason (error class or code). */
  deadLettered: Record<string, number>;
  seconds: number;
  /** Anything else worth reading: kills done, restarts, retries seen. */
  details?: Record<string, number | string>;
}

/** The NDJSON file the runner reads back; set by the faults config's global set-up. */
export const FAULTS_RESULTS_ENV = 'SYNCCTL_FAULTS_RESULTS';

export function recordFaultReport(report: FaultReport): void {
  const file = process.env[FAULTS_RESULTS_ENV];
  if (file) appendFileSync(file, `${JSON.stringify(report)}\n`);
}
