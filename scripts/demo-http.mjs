// Demo helper: shows what the Analytics fixture stored, and changes the fixture CRM and Inventory.
const env = process.env;
const [what] = process.argv.slice(2);

async function call(url, init = {}) {
  const response = await fetch(url, init);
  if (!response.ok)
    throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

const base = (url) => url.replace(/\/+$/, '');
const control = (url) => `${new URL(url).origin}/_control`;

if (what === 'analytics-summary') {
  const auth = { headers: { authorization: `Bearer ${env.SYNCCTL_ANALYTICS_TOKEN}` } };
  const records = await call(`${base(env.SYNCCTL_ANALYTICS_URL)}/v1/records`, auth);
  const log = await call(`${base(env.SYNCCTL_ANALYTICS_URL)}/v1/log`, auth);
  const list = records.records ?? records;
  const entries = log.entries ?? log.log ?? log;
  const keys = new Set(entries.map((e) => e.key));
  console.log(`${list.length} unified customer records in the current view`);
  console.log(
    `${entries.length} writes in the ingest log, ${keys.size} distinct record keys (nothing stored twice)`,
  );
  const sample = list.find((r) => (r.record?.products ?? []).length > 0) ?? list[0];
  if (sample)
    console.log('a sample record:\n' + JSON.stringify(sample, null, 2).split('\n').slice(0, 40).join('\n'));
} else if (what === 'mutate') {
  const post = (url, body) =>
    call(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  console.log(
    'CRM:',
    JSON.stringify(await post(`${control(env.SYNCCTL_CRM_URL)}/mutate`, { update: 25, delete: 5 })),
  );
  console.log(
    'Inventory:',
    JSON.stringify(
      await post(`${control(env.SYNCCTL_INVENTORY_WSDL)}/mutate`, { update: 10, discontinue: 2 }),
    ),
  );
} else if (what === 'crm-latency') {
  // Slows every CRM page, so the demo's first run is still holding its lock when the second starts.
  const latencyMs = Number(process.argv[3] ?? 0);
  await call(`${control(env.SYNCCTL_CRM_URL)}/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(latencyMs > 0 ? { latencyMs } : {}),
  });
} else {
  console.error('usage: demo-http.mjs analytics-summary|mutate|crm-latency MS');
  process.exit(2);
}
