/**
 * Which of two versions of one entity is newer. Kafka keeps one entity's versions in order inside a
 * partition, but re-fetches, backfills and DLQ replays can publish an older version later; the
 * source's own version fields decide, never arrival order alone.
 */

export interface VersionStamp {
  /** The source's monotonically increasing version, when it has one. */
  sourceVersion: number | null;
  /** The source's last-modified time as epoch ms, when it has one. */
  updatedMs: number | null;
  /** A delete outranks an upsert of the same version: the delete happened to that version. */
  deleted: boolean;
}

export type Comparison = 'newer' | 'same' | 'older';

export function parseUpdatedMs(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** True when the record carries nothing to order it by (then Kafka order decides). */
export function isUnversioned(stamp: VersionStamp): boolean {
  return stamp.sourceVersion === null && stamp.updatedMs === null;
}

/**
 * Compares an incoming version with the stored one: sourceVersion first, then the source's update
 * time, then delete over upsert. A dimension missing on either side does not decide.
 */
export function compareVersions(incoming: VersionStamp, stored: VersionStamp): Comparison {
  if (incoming.sourceVersion !== null && stored.sourceVersion !== null) {
    if (incoming.sourceVersion > stored.sourceVersion) return 'newer';
    if (incoming.sourceVersion < stored.sourceVersion) return 'older';
  }
  if (incoming.updatedMs !== null && stored.updatedMs !== null) {
    if (incoming.updatedMs > stored.updatedMs) return 'newer';
    if (incoming.updatedMs < stored.updatedMs) return 'older';
  }
  if (incoming.deleted !== stored.deleted) return incoming.deleted ? 'newer' : 'older';
  return 'same';
}
