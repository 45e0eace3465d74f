import { afterAll, describe, expect, it } from 'vitest';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let world: FaultWorld | undefined;
afterAll(async () => world?.close());

describe('CRM 429 storm and SOAP Server faults / HTML error pages', () => {
  it('fetches everything and delivers every record once', async () => {
    world = await FaultWorld.start({
      tag: 'faults-sources',
      seed: 1304,
      customers: scale.customers,
      products: scale.products,
      crmFaults: { seed: 1304, rateLimit: { rate: 0.5, retryAfter: 1 } },
      inventoryFaults: { seed: 1304, soapFault: { rate: 0.25 }, html: { rate: 0.15 } },
      inventoryPageSize: 20,
    });
    const w = world;
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm', ['--crm-page-size', '25']));
    await w.untilClean(w.consumeArgs());

    const crm = w.crm.control.stats();
    const inventory = w.inventory.control.stats();
    const { verdict } = await w.report(
      'source-faults',
      `CRM answers half its requests 429 with Retry-After: 1; the SOAP service 25 % soap:Server faults and 15 % HTML 502 pages; ${scale.customers} customers, ${scale.products} products`,
      {
        'crm requests': crm.requests,
        'crm 429': crm.byStatus['429'] ?? 0,
        'soap requests': inventory.requests,
        'soap Server faults': inventory.soap.serverFaults,
        'soap html pages': inventory.faultsFired.html ?? 0,
      },
    );
    expectClean(verdict);
    expect(crm.byStatus['429']).toBeGreaterThan(0);
    expect(inventory.soap.serverFaults).toBeGreaterThan(0);
  });
});
