// The data the bench cases work on and what each must have landed, computed independently of
// syncctl from the fixtures' seeded generators, and the checks that compare it with the summaries
// and the read-backs. A benchmark that loses records is not a result, so every mismatch throws.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { expectedCustomers } from '../dist/fixtures/data/customers.js';
import { expectedProducts } from '../dist/fixtures/data/products.js';
import { makeEnvelope } from '../dist/src/records/envelope.js';
import { expectEqual, getJson } from './lib.mjs';

export const SEED = 42;

/** The fixtures' data at one size: N customers referencing N products, N products. */
export function expectedData(size) {
  const liveCustomers = [];
  for (const c of expectedCustomers({ seed: SEED, count: size, products: size }))
    if (!c.archived) liveCustomers.push(c.id);
  let discontinued = 0;
  for (const p of expectedProducts({ seed: SEED, count: size })) if (p.discontinued) discontinued++;
  return { size, liveCustomers, archived: size - liveCustomers.length, discontinued };
}

/** Synthetic NDJSON envelopes for the publish case (no fixture involved). */
export async function writeSample(path, count) {
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    const line = JSON.stringify(
      makeEnvelope({
        source: 'crm',
        id: `C${String(i % 50000).padStart(7, '0')}`,
        op: 'upsert',
        data: {
          name: `Customer ${i} — Zoë 山田`,
          seq: i,
          notes: 'x'.repeat(200),
          productIds: ['P000001', 'P000002'],
        },
        sourceUpdatedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      }),
    );
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** A completed full fetch of every fixture record: upserts and deletes as the generator says. */
export function verifyFetch(what, summary, size, deletes) {
  expectEqual(`${what}: status`, summary.status, 'completed');
  expectEqual(`${what}: records`, summary.records, size);
  expectEqual(`${what}: deletes`, summary.deletes, deletes);
  expectEqual(`${what}: upserts`, summary.upserts, size - deletes);
  expectEqual(`${what}: rejects`, summary.rejects, 0);
}

/** A `consume --once` that drained both topics with nothing dead-lettered. */
export function verifyConsume(what, summary, messages) {
  expectEqual(`${what}: status`, summary.status, 'completed');
  expectEqual(`${what}: consumed`, summary.consumed, messages);
  expectEqual(`${what}: lag left`, summary.lagLeft.total, 0);
  expectEqual(`${what}: dead-lettered`, summary.deadLettered, 0);
}

/**
 * Analytics must hold exactly the live customers, each with every product resolved, and have
 * stored each record key once. The current view is rebuilt from the write log (cheap at any size);
 * the full `GET /v1/records` body (~5 kB a customer) is read up to `fullUpTo` customers, above
 * that a sample of customers is read one by one.
 */
export async function verifyAnalytics(what, analytics, token, summary, expected, fullUpTo) {
  const log = await getJson(`${analytics}/v1/log`, token);
  expectEqual(`${what}: Analytics log entries vs summary.delivered`, log.count, summary.delivered);
  const keys = new Set(log.entries.map((e) => e.key));
  expectEqual(`${what}: distinct record keys in the Analytics log`, keys.size, log.entries.length);
  const lastOp = new Map();
  for (const e of log.entries) lastOp.set(e.customerId, e.op);
  const live = new Set([...lastOp].filter(([, op]) => op === 'upsert').map(([id]) => id));
  expectEqual(`${what}: live customers at Analytics`, live.size, expected.liveCustomers.length);
  const missing = expected.liveCustomers.filter((id) => !live.has(id));
  if (missing.length > 0)
    throw new Error(`${what}: missing at Analytics: ${missing.slice(0, 10).join(' ')}…`);

  const checkRecord = (entry) => {
    const unresolved = entry.record.unresolvedProductIds;
    if (unresolved.length > 0)
      throw new Error(`${what}: ${entry.customerId} still has unresolved products ${unresolved.join(' ')}`);
  };
  if (expected.size <= fullUpTo) {
    const view = await getJson(`${analytics}/v1/records`, token);
    expectEqual(`${what}: GET /v1/records count`, view.count, expected.liveCustomers.length);
    view.records.forEach(checkRecord);
  } else {
    const step = Math.max(1, Math.floor(expected.liveCustomers.length / 25));
    for (let i = 0; i < expected.liveCustomers.length; i += step) {
      const id = expected.liveCustomers[i];
      const view = await getJson(`${analytics}/v1/records?customerId=${id}`, token);
      expectEqual(`${what}: GET /v1/records?customerId=${id} count`, view.count, 1);
      checkRecord(view.records[0]);
    }
  }
  return { live: live.size, logEntries: log.count };
}

/**
 * Peak RSS should not follow the input size. V8 grows its heap lazily, so from a small first size
 * the peak still rises before it levels off: with three or more sizes the two largest are compared
 * (a plateau is flat there), with two the smallest and the largest.
 */
export function memoryWarnings(results, cases) {
  const warnings = [];
  for (const c of cases) {
    // With repetitions, one row per size: the largest peak of its runs.
    const bySize = new Map();
    for (const r of results.filter((x) => x.case === c))
      if (!bySize.has(r.size) || bySize.get(r.size).peakRssMb < r.peakRssMb) bySize.set(r.size, r);
    const rows = [...bySize.values()].sort((a, b) => a.size - b.size);
    if (rows.length < 2) continue;
    const [small, large] = rows.length >= 3 ? rows.slice(-2) : [rows[0], rows.at(-1)];
    if (large.peakRssMb > small.peakRssMb * 1.25 && large.peakRssMb - small.peakRssMb > 30) {
      const hint = rows.length >= 3 ? '' : ' (add a larger third size to BENCH_SIZES to tell a plateau)';
      warnings.push(
        `${c}: peak RSS grew from ${small.peakRssMb} MB (${small.size}) to ${large.peakRssMb} MB (${large.size})${hint}`,
      );
    }
  }
  return warnings;
}
