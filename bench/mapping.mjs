// node bench/mapping.mjs [records]: per-record cost of a source mapping (after `npm run build`), in
// process and without I/O: dot-path shorthands (synchronous) against JSONata expressions (one
// promise per expression and record, a page's records evaluated concurrently), with envelope building.
import { WindowRecords, emptyRecordStats } from '../dist/src/connectors/source-records.js';
import { crmMapper } from '../dist/src/mapping/index.js';
import { startCrmServer } from '../dist/fixtures/crm/server.js';

const total = Number(process.argv[2] ?? 50_000);
const PAGE = 100;
const PATHS = {
  id: 'id',
  updatedAt: 'updatedAt',
  version: 'version',
  deleted: 'archived',
  deletedAt: 'deletedAt',
};

// Records as the fixture CRM serves them, Salesforce-shaped (delimited references, status deletes).
const server = await startCrmServer({
  count: 1,
  shape: { refs: 'delimited', deletes: 'status', time: 'epoch-ms' },
});
const store = server.control.store;
await server.close();
const { shapeCustomer } = await import('../dist/fixtures/crm/shapes.js');
const records = [...new store.constructor({ seed: 42, count: total, products: 200 }).records()].map((c) =>
  shapeCustomer(c, { refs: 'delimited', deletes: 'status', time: 'epoch-ms' }),
);

const cases = {
  'dot paths (shorthands)': {},
  'JSONata: deleted + productIds': {
    deleted: 'status in ["deleted", "archived"]',
    productIds: '$split(Interests__c, ";")',
  },
  'JSONata: every field': {
    id: 'id',
    updatedAt: 'updatedAt',
    version: 'version',
    deleted: 'status in ["deleted", "archived"]',
    productIds: '$split(Interests__c, ";")',
  },
  'JSONata: every field + data': {
    id: 'id',
    updatedAt: 'updatedAt',
    version: 'version',
    deleted: 'status in ["deleted", "archived"]',
    productIds: '$split(Interests__c, ";")',
    data: '{"id": id, "name": name, "email": email, "tier": tier}',
  },
};

/** µs per record: the mapping alone, and the mapping with envelope building (hash included). */
async function run(spec, withEnvelopes) {
  const mapper = crmMapper(PATHS, spec);
  const pages = new WindowRecords('crm', 0, emptyRecordStats(), mapper);
  const start = process.hrtime.bigint();
  for (let i = 0; i < records.length; i += PAGE) {
    const page = records.slice(i, i + PAGE);
    if (withEnvelopes) await pages.page(page, null);
    else await mapper.mapAll(page);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / records.length;
}

const best = async (spec, withEnvelopes) => {
  await run(spec, withEnvelopes); // warm-up
  return Math.min(
    await run(spec, withEnvelopes),
    await run(spec, withEnvelopes),
    await run(spec, withEnvelopes),
  );
};

console.log(`${total} records in pages of ${PAGE}; µs per record, best of 3`);
console.log(`${'mapping'.padEnd(32)} ${'mapping only'.padStart(13)} ${'+ envelope'.padStart(11)}`);
for (const [name, spec] of Object.entries(cases)) {
  const alone = await best(spec, false);
  const built = await best(spec, true);
  console.log(`${name.padEnd(32)} ${alone.toFixed(2).padStart(13)} ${built.toFixed(1).padStart(11)}`);
}
