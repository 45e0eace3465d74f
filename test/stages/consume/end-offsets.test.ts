import type { Admin } from 'kafkajs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EndOffsets, watchGroupProgress } from '../../../src/stages/consume/end-offsets.js';
import { RunControl } from '../../../src/stages/consume/run-control.js';
import { createLogger } from '../../../src/log.js';
import { partitionId } from '../../../src/stages/consume/offsets.js';

/** customers[0] 0..10, customers[1] empty, products[0] 5..8 (log start moved by retention). */
function tracker(committed: [string, number, bigint][] = []) {
  return new EndOffsets(
    new Map([
      [partitionId('customers', 0), { low: 0n, high: 10n }],
      [partitionId('customers', 1), { low: 4n, high: 4n }],
      [partitionId('products', 0), { low: 5n, high: 8n }],
    ]),
    new Map(committed.map(([t, p, o]) => [partitionId(t, p), o])),
  );
}

describe('EndOffsets', () => {
  it('is done once the group committed every non-empty partition up to its end offset', () => {
    expect(tracker().isDone()).toBe(false);
    expect(tracker([['customers', 0, 10n]]).isDone()).toBe(false);
    expect(
      tracker([
        ['customers', 0, 10n],
        ['products', 0, 8n],
      ]).isDone(),
    ).toBe(true);
  });

  it('counts its own commits as well as the group’s', () => {
    const t = tracker([['products', 0, 8n]]);
    t.committedHere([{ topic: 'customers', partition: 0, offset: 10n }]);
    expect(t.isDone()).toBe(true);
  });

  it('without targets (no --once) is done at once and every partition counts as read', () => {
    const t = new EndOffsets();
    expect(t.isDone()).toBe(true);
    t.assign([{ topic: 'customers', partition: 0 }]);
    expect(t.assignedRead()).toBe(true);
  });

  it('counts a partition read once merged to its target, before anything is committed', () => {
    const t = tracker();
    t.assign([
      { topic: 'customers', partition: 0 },
      { topic: 'customers', partition: 1 },
      { topic: 'products', partition: 0 },
    ]);
    expect(t.assignedRead('products')).toBe(false);
    expect(t.merged('products', 0, 8n)).toBe(8n);
    expect(t.assignedRead('products')).toBe(true);
    expect(t.readToTarget(partitionId('customers', 1))).toBe(true); // empty
    expect(t.assignedRead()).toBe(false);
    expect(t.isDone()).toBe(false); // merged is not committed
  });

  it('owes nothing for a batch read again below what this instance committed', () => {
    const t = tracker();
    t.committedHere([{ topic: 'customers', partition: 0, offset: 6n }]);
    expect(t.merged('customers', 0, 5n)).toBeNull();
    expect(t.merged('customers', 0, 6n)).toBeNull();
    expect(t.merged('customers', 0, 9n)).toBe(9n);
  });

  it('knows how far a partition was read: merged, else committed here, else committed by the group', () => {
    const t = tracker([['products', 0, 6n]]);
    expect(t.known('products', 0)).toBe(6n);
    expect(t.known('customers', 0)).toBeUndefined();
    t.committedHere([{ topic: 'customers', partition: 0, offset: 3n }]);
    expect(t.known('customers', 0)).toBe(3n);
    t.merged('customers', 0, 5n);
    expect(t.known('customers', 0)).toBe(5n);
  });

  it('reports whether the group moved when its commits are read again', () => {
    const t = tracker([['customers', 0, 2n]]);
    expect(t.refresh(new Map([[partitionId('customers', 0), 2n]]))).toBe(false);
    expect(t.refresh(new Map([[partitionId('customers', 0), 4n]]))).toBe(true);
    expect(
      t.refresh(
        new Map([
          [partitionId('customers', 0), 10n],
          [partitionId('products', 0), 8n],
        ]),
      ),
    ).toBe(true);
    expect(t.isDone()).toBe(true);
  });
});

describe('watchGroupProgress (--once)', () => {
  afterEach(() => vi.useRealTimers());

  function watch(admin: Pick<Admin, 'fetchOffsets'>, joined: boolean, inFlight = 0) {
    const control = new RunControl();
    control.inFlight = inFlight;
    const timer = watchGroupProgress(tracker(), {
      admin: admin as Admin,
      group: 'g',
      topics: ['customers', 'products'],
      control,
      membership: { joined, updateProductPhase: () => {} },
      delivery: { draining: false },
      idleTimeoutMs: 30_000,
      maxDeliveryDelayMs: 5_000,
      sessionTimeoutMs: 30_000,
      logger: createLogger('quiet', () => true),
    });
    return { control, stop: () => clearInterval(timer) };
  }

  it('gives up after the idle timeout when joined and nothing moves', async () => {
    vi.useFakeTimers();
    const { control, stop } = watch({ fetchOffsets: () => Promise.resolve([]) }, true);
    await vi.advanceTimersByTimeAsync(34_000);
    expect(control.stopRequested).toBe(false);
    await vi.advanceTimersByTimeAsync(3_000);
    stop();
    expect(control.finishedBy).toBe('idle-timeout');
    expect(control.fatal?.exitCode).toBe(75);
  });

  it('gives up on a stalled run that never joins, with a batch stuck, and offsets unreadable', async () => {
    vi.useFakeTimers();
    const { control, stop } = watch({ fetchOffsets: () => new Promise(() => {}) }, false, 1);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(control.stopRequested).toBe(false);
    await vi.advanceTimersByTimeAsync(7_000);
    stop();
    expect(control.finishedBy).toBe('idle-timeout');
    expect(control.fatal?.message).toMatch(/no progress for \d+ s .*stalled/);
  });
});
