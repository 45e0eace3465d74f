import { afterAll, describe, expect, it } from 'vitest';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let world: FaultWorld | undefined;
afterAll(async () => world?.close());

describe('consumer SIGKILLed at random points', () => {
  it('delivers every record once after each kill is rerun', async () => {
    world = await FaultWorld.start({
      tag: 'faults-consumer-kill',
      seed: 1301,
      customers: scale.killCustomers,
      products: scale.killProducts,
      inventoryPageSize: 500,
    });
    const w = world;
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm', ['--crm-page-size', '500']));

    // Kill points spread over the run: some by time (often still merging, before any delivery),
    // most after a random number of Analytics writes (mid-delivery, between a store and its commit).
    const meanStep = Math.max(1, Math.floor(scale.killCustomers / (scale.consumerKills + 1)));
    const points: string[] = [];
    for (let i = 0; i < scale.consumerKills; i++) {
      const byTime = w.random() < 0.3;
      const step = byTime ? Number.POSITIVE_INFINITY : 1 + Math.floor(w.random() * 2 * meanStep);
      const maxMs = byTime ? 300 + Math.floor(w.random() * 4_000) : 600_000;
      const kill = await w.killWhen(w.consumeArgs(), () => w.analyticsWrites(), step, maxMs);
      points.push(kill ? `${kill.at}w/${kill.afterMs}ms` : 'finished');
    }
    await w.untilClean(w.consumeArgs());

    const { report, verdict } = await w.report(
      'consumer-kill',
      `consume --once SIGKILLed at ${scale.consumerKills} seeded random points (by time or by Analytics writes), rerun each time; ${scale.killCustomers} customers, ${scale.killProducts} products`,
      { 'analytics writes': w.analyticsWrites(), 'kill points': points.join(' ') },
    );
    expectClean(verdict);
    expect(report.expected).toBeGreaterThan(scale.killCustomers * 0.9);
    expect(w.kills).toBeGreaterThan(0);
  });
});
