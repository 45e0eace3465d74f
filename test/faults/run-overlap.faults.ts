import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { customerId, intBetween, productId } from '../../fixtures/data/prng.js';
import { startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
const JOB = 'nightly';
/** Cron's interval: shorter than a run (a slow CRM page, then a consumer group to join), so ticks overlap. */
const INTERVAL_MS = 1_500;
const TICKS = 8;
/** A CRM page's latency during the ticks: longer than the interval, as on a slow night. */
const PAGE_LATENCY_MS = 2_500;
/** The tick whose run is SIGKILLed mid-run while it holds the lock (a cron host's OOM kill). */
const KILL_TICK = 4;
let world: FaultWorld | undefined;
const children: Child[] = [];
afterAll(async () => {
  for (const child of children) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  await world?.close();
});

describe('syncctl run overlapping itself from cron, the sources changing between ticks', () => {
  it('refuses the overlapping runs clearly and the result is exact', async () => {
    world = await FaultWorld.start({
      tag: 'faults-run-overlap',
      seed: 1308,
      customers: scale.customers,
      products: scale.products,
      crmFaults: { latencyMs: 200 },
    });
    const w = world;
    const runArgs = [
      ...w.common(),
      '--json',
      'run',
      '--job',
      JOB,
      ...w.h.topicArgs(),
      '--session-timeout',
      '6',
      '--idle-timeout',
      '30',
      '--crm-page-size',
      '50',
    ];

    // The first night loads everything; the ticks after it deliver changes on top of that.
    await w.untilClean(runArgs);
    const delivered = w.analyticsWrites();
    // From now on a CRM page takes longer than cron's interval, so every run outlasts its tick.
    w.crm.control.setFaults({ latencyMs: PAGE_LATENCY_MS });
    const some = (n: number, count: number, id: (index: number) => string) =>
      Array.from({ length: n }, () => id(intBetween(w.random, 0, count - 1)));

    const ticks: { child: Child; started: number; ended: Promise<number> }[] = [];
    for (let i = 0; i < TICKS; i++) {
      // Every tick finds changed sources (seeded picks): updates, deletes and discontinued products.
      w.crm.control.mutate({
        update: some(12, scale.customers, customerId),
        delete: some(1, scale.customers, customerId),
      });
      w.inventory.control.mutate({
        update: some(3, scale.products, productId),
        discontinue: some(1, scale.products, productId),
      });
      // This tick's run is made the holder (the runs before it are let finish), then SIGKILLed
      // while it pages through the CRM, so the next ticks meet a lock whose holder is dead.
      if (i === KILL_TICK) await Promise.all(ticks.map((t) => t.child.exited));
      const requests = w.crm.control.stats().requests;
      const child = startSyncctl(runArgs, w.env);
      children.push(child);
      ticks.push({ child, started: Date.now(), ended: child.exited.then(() => Date.now()) });
      if (i === KILL_TICK) {
        let finished = false;
        void child.exited.then(() => (finished = true));
        await waitFor(
          'the run to fetch',
          () => finished || w.crm.control.stats().requests > requests,
          60_000,
        );
        if (!finished) {
          child.process.kill('SIGKILL');
          await child.exited;
          w.kills++;
        }
      }
      await sleep(INTERVAL_MS);
    }

    const refusals: number[] = [];
    const stderrs: string[] = [];
    let ran = 0;
    for (const { child, started, ended } of ticks) {
      const { code, signal } = await child.exited;
      if (signal === 'SIGKILL') continue;
      const stderr = child.stderr();
      stderrs.push(stderr);
      if (code === 4) {
        // Refused at once, naming the run that holds the job's lock; nothing of it recorded.
        expect(stderr).toMatch(
          new RegExp(`lock run:${JOB} is held by run [0-9a-f-]{36} \\(pid \\d+ on .+\\) since \\d{4}-`),
        );
        refusals.push((await ended) - started);
        continue;
      }
      w.exitCodes.set(code ?? -1, (w.exitCodes.get(code ?? -1) ?? 0) + 1);
      expect([0, 75], stderr.slice(-3000)).toContain(code);
      if (code === 0) ran++;
    }
    // The next tick, once the sources stand still, takes everything that changed since.
    stderrs.push((await w.untilClean(runArgs)).stderr);
    // The killed holder's lock went to a later run (its pid gone), not left blocking every tick.
    const tookOver = stderrs.some((e) =>
      /took over stale lock run:nightly from run .*pid \d+ is gone/.test(e),
    );

    const { verdict } = await w.report(
      'run-overlap',
      `after a first full run, syncctl run started by "cron" every ${INTERVAL_MS / 1000} s (${TICKS} ticks, each run slower than that: a CRM page takes ${PAGE_LATENCY_MS / 1000} s, the sources changed before each tick, the lock holder SIGKILLed at tick ${KILL_TICK + 1}), then once more; ${scale.customers} customers`,
      {
        'runs finished': ran + 2,
        'refused (exit 4)': refusals.length,
        'slowest refusal ms': Math.max(...refusals),
        'analytics writes': w.analyticsWrites(),
        'writes after the first run': w.analyticsWrites() - delivered,
      },
    );
    expectClean(verdict);
    expect(refusals.length).toBeGreaterThan(0);
    expect(ran).toBeGreaterThan(0);
    expect(w.analyticsWrites()).toBeGreaterThan(delivered);
    expect(w.kills).toBe(1);
    expect(tookOver).toBe(true);
  });
});
