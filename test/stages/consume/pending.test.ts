import { describe, expect, it } from 'vitest';
import { PendingDeliveries } from '../../../src/stages/consume/pending.js';

const limits = { backlog: 100, maxDelayMs: 5_000 };

describe('PendingDeliveries', () => {
  it('is due once enough marks wait, or the oldest merge is old enough — not before', () => {
    const p = new PendingDeliveries();
    expect(p.idle).toBe(true);
    expect(p.due(limits, 0)).toBe(false);
    p.merged('c', 0, 10n, 60, 1_000);
    expect(p.idle).toBe(false);
    expect(p.due(limits, 5_999)).toBe(false);
    expect(p.due(limits, 6_000)).toBe(true);
    p.merged('c', 1, 5n, 40, 2_000);
    expect(p.due(limits, 2_000)).toBe(true);
  });

  it('with no delay, anything merged is due at once; nothing merged never is', () => {
    const p = new PendingDeliveries();
    expect(p.due({ backlog: 100, maxDelayMs: 0 }, 0)).toBe(false);
    p.merged('p', 0, 3n, 0, 0);
    expect(p.due({ backlog: 100, maxDelayMs: 0 }, 0)).toBe(true);
  });

  it('owes the highest offset per partition and forgets exactly what was committed', () => {
    const p = new PendingDeliveries();
    p.merged('c', 0, 10n, 1);
    p.merged('c', 0, 20n, 1);
    p.merged('c', 0, 15n, 0); // read again: never lowers what is owed
    p.merged('p', 2, 7n, 0);
    const owed = p.snapshot();
    expect(owed.commits).toEqual([
      { topic: 'c', partition: 0, offset: 20n },
      { topic: 'p', partition: 2, offset: 7n },
    ]);
    p.drained();
    p.committed(owed);
    expect(p.idle).toBe(true);
    expect(p.snapshot().commits).toEqual([]);
  });

  it('a rebalance drops owed offsets but keeps the marks and their age, so the drain still comes', () => {
    const p = new PendingDeliveries();
    p.merged('c', 0, 10n, 30, 1_000);
    const owed = p.snapshot();
    p.newEpoch();
    expect(p.snapshot().commits).toEqual([]);
    expect(p.idle).toBe(false);
    expect(p.due(limits, 6_000)).toBe(true);
    // A commit prepared before the rebalance does not touch what is owed after it.
    p.merged('c', 0, 10n, 0, 6_000);
    p.committed(owed);
    expect(p.snapshot().commits).toEqual([{ topic: 'c', partition: 0, offset: 10n }]);
  });

  it('a batch owing nothing (already committed) still counts its marks', () => {
    const p = new PendingDeliveries();
    p.merged('c', 0, null, 0, 0);
    expect(p.idle).toBe(true);
    p.merged('c', 0, null, 150, 0);
    expect(p.idle).toBe(false);
    expect(p.due(limits, 0)).toBe(true);
    expect(p.snapshot().commits).toEqual([]);
  });
});
