import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { MergeStore } from '../../../src/state/merge-store.js';
import { DeliveryScheduler, isTransient } from '../../../src/stages/consume/delivery.js';
import type { Drainer } from '../../../src/stages/consume/drain.js';
import { EndOffsets } from '../../../src/stages/consume/end-offsets.js';
import type { GroupMembership } from '../../../src/stages/consume/membership.js';
import { Mutex } from '../../../src/stages/consume/mutex.js';
import { partitionId } from '../../../src/stages/consume/offsets.js';
import { PendingDeliveries } from '../../../src/stages/consume/pending.js';
import { RunControl } from '../../../src/stages/consume/run-control.js';
import { newCounters } from '../../../src/stages/consume/types.js';
import { BrokerUnreachableError, SinkPermanentError } from '../../../src/errors.js';

/** The scheduler's decisions only: when a drain is due and what a merged batch owes. */
function scheduler(once: boolean, offsets = new EndOffsets()) {
  const pending = new PendingDeliveries();
  const control = new RunControl();
  const delivery = new DeliveryScheduler({
    store: {} as MergeStore,
    drainer: {} as Drainer,
    membership: {} as GroupMembership,
    pending,
    offsets,
    control,
    mutex: new Mutex(),
    counters: newCounters(),
    once,
    limits: { backlog: 100, maxDelayMs: 60_000 },
    logger: silentLogger,
  });
  return { delivery, pending, control, offsets };
}

describe('DeliveryScheduler', () => {
  it('is not due with nothing merged, even when stopping', () => {
    const { delivery, control } = scheduler(false);
    control.requestStop('signal');
    expect(delivery.due()).toBe(false);
  });

  it('is due for what was merged once enough marks wait, or at a stop', () => {
    const { delivery } = scheduler(false);
    delivery.noteMerged('c', 0, 10n, 5);
    expect(delivery.due()).toBe(false);
    delivery.noteMerged('c', 1, 10n, 95);
    expect(delivery.due()).toBe(true);

    const stopping = scheduler(false);
    stopping.delivery.noteMerged('c', 0, 10n, 1);
    expect(stopping.delivery.due()).toBe(false);
    stopping.control.requestStop('signal');
    expect(stopping.delivery.due()).toBe(true);
  });

  it('--once: due as soon as this member read its partitions to the end offsets seen at start', () => {
    const offsets = new EndOffsets(new Map([[partitionId('c', 0), { low: 0n, high: 20n }]]), new Map());
    offsets.assign([{ topic: 'c', partition: 0 }]);
    const { delivery } = scheduler(true, offsets);
    delivery.noteMerged('c', 0, 10n, 1);
    expect(delivery.due()).toBe(false);
    delivery.noteMerged('c', 0, 20n, 1);
    expect(delivery.due()).toBe(true);
  });

  it('owes no commit for a batch read again below what this instance committed', () => {
    const { delivery, pending, offsets } = scheduler(false);
    offsets.committedHere([{ topic: 'c', partition: 0, offset: 30n }]);
    delivery.noteMerged('c', 0, 20n, 0);
    expect(pending.snapshot().commits).toEqual([]);
    delivery.noteMerged('c', 0, 40n, 0);
    expect(pending.snapshot().commits).toEqual([{ topic: 'c', partition: 0, offset: 40n }]);
  });

  it('retries only errors that say a later attempt may get past them', () => {
    expect(isTransient(new BrokerUnreachableError('down'))).toBe(true);
    expect(isTransient(new SinkPermanentError('refused'))).toBe(false);
    expect(isTransient(new Error('bug'))).toBe(false);
  });
});
