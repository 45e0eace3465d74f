import { afterAll, describe, expect, it } from 'vitest';
import { CUSTOMER_BASE_TIME, CUSTOMER_STEP_MS } from '../../fixtures/data/customers.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let world: FaultWorld | undefined;
afterAll(async () => world?.close());

describe('fetcher SIGKILLed during a concurrent backfill', () => {
  it('resumes to every record, and consume delivers each once', async () => {
    world = await FaultWorld.start({
      tag: 'faults-fetcher-kill',
      seed: 1302,
      customers: scale.customers,
      products: scale.products,
      // Slow pages keep windows in flight at once, so a kill lands mid-window.
      crmFaults: { latencyMs: 40 },
    });
    const w = world;
    const since = new Date(CUSTOMER_BASE_TIME).toISOString();
    const until = new Date(CUSTOMER_BASE_TIME + (scale.customers + 1) * CUSTOMER_STEP_MS).toISOString();
    const backfill = w.fetchArgs('crm', [
      '--since',
      since,
      '--until',
      until,
      '--window',
      '12',
      '--concurrency',
      '4',
      '--crm-page-size',
      '25',
    ]);
    const pages = () => w.crm.control.stats().requests;
    const meanStep = Math.max(1, Math.floor(scale.customers / 25 / (scale.fetcherKills + 1)));
    const points: string[] = [];
    for (let i = 0; i < scale.fetcherKills; i++) {
      const kill = await w.killWhen(backfill, pages, 1 + Math.floor(w.random() * 2 * meanStep), 600_000);
      points.push(kill ? `${kill.at}p/${kill.afterMs}ms` : 'finished');
    }
    // Rerunning the same command resumes the backfill: finished windows skipped, the rest continued.
    await w.untilClean(backfill);
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.consumeArgs());

    const { verdict } = await w.report(
      'fetcher-kill',
      `fetch --source crm backfill (--window 12 --concurrency 4, 25 per page, 40 ms a page) SIGKILLed at ${scale.fetcherKills} random points, the same command rerun to resume; ${scale.customers} customers`,
      { 'crm requests': pages(), 'kill points': points.join(' ') },
    );
    expectClean(verdict);
    expect(w.kills).toBeGreaterThan(0);
  });
});
