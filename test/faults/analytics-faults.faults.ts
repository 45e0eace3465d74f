import { afterAll, describe, expect, it } from 'vitest';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let world: FaultWorld | undefined;
afterAll(async () => world?.close());

describe('Analytics answering 5xx, hanging and losing answers', () => {
  it('stores every record once', async () => {
    world = await FaultWorld.start({
      tag: 'faults-analytics',
      seed: 1303,
      customers: scale.customers,
      products: scale.products,
      analyticsFaults: {
        seed: 1303,
        serverError: { rate: 0.3, status: 503 },
        hang: { rate: 0.05 },
        // Lost answers: stored, then the connection dropped (or never answered) — the client
        // cannot tell these from a failure and must retry with the same batch key.
        storeThenDrop: { rate: 0.05 },
        storeThenHang: { rate: 0.02 },
      },
    });
    const w = world;
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm'));
    // Small deliveries make many requests, so each fault fires many times.
    await w.untilClean(
      w.consumeArgs(['--batch-size', '10', '--analytics-batch-size', '10', '--analytics-retries', '8']),
    );

    const outcomes: Record<string, number> = {};
    for (const r of w.h.server.stats()) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    const { verdict } = await w.report(
      'analytics-faults',
      `Analytics answers 30 % 503, 5 % hangs, 7 % lost answers (stored, then dropped or hung); deliveries of 10; ${scale.customers} customers`,
      Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [`ingest ${k}`, v])),
    );
    expectClean(verdict);
    expect(outcomes['server-error']).toBeGreaterThan(0);
    expect((outcomes['stored-then-drop'] ?? 0) + (outcomes['stored-then-hang'] ?? 0)).toBeGreaterThan(0);
  });
});
