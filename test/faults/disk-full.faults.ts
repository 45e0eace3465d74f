import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSyncctl, startSyncctl, waitFor } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
/** Room for the whole state of the run (2 MiB is too little for 600 customers), so only the filler makes it full. */
const TMPFS_SIZE = '8m';
let dir: string;
let mounted = false;
let world: FaultWorld | undefined;

// The state directory on a tmpfs of its own (the suite runs as root, as CI does), so filling it
// fills nothing else.
beforeAll(() => {
  dir = tempDir('syncctl-faults-disk-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dir]);
  mounted = true;
});
afterAll(async () => {
  await world?.close();
  if (mounted) execFileSync('umount', [dir]);
});

/** Writes a file until the device is full; returns its path and size. */
function fillUp(): { path: string; bytes: number } {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return { path, bytes };
}

/** What the operator sees: one clear error and hint, no stack trace. */
function expectClearFailure(code: number | null, stderr: string): void {
  expect(code, stderr).toBe(1);
  expect(stderr).toMatch(/syncctl: error: the SQLite state store .* is full: no space left on its device/);
  expect(stderr).toMatch(/syncctl: hint: free space on the device holding /);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('the SQLite state directory filling up during consume', () => {
  it('stops with a clear error and, once space is freed, a rerun delivers exactly', async () => {
    world = await FaultWorld.start({
      tag: 'faults-disk-full',
      seed: 1309,
      customers: scale.customers,
      products: scale.products,
      stateFile: join(dir, 'state.db'),
      // Slow deliveries, so the device fills in the middle of the run.
      analyticsFaults: { latencyMs: 50 },
    });
    const w = world;
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm'));

    const args = w.consumeArgs(['--batch-size', '10', '--analytics-batch-size', '10']);
    const child = startSyncctl(args, w.env);
    let finished = false;
    void child.exited.then(() => (finished = true));
    await waitFor('deliveries', () => finished || w.analyticsWrites() >= scale.customers / 4, 300_000);
    const filledAt = w.analyticsWrites();
    const filler = fillUp();
    const { code } = await child.exited;
    expectClearFailure(code, child.stderr());
    expect(filledAt).toBeLessThan(w.verdict().expected);

    // Still full: a rerun fails the same way, at once, changing nothing.
    const written = w.analyticsWrites();
    const again = await runSyncctl(args, { env: w.env, timeoutMs: 120_000 });
    expectClearFailure(again.code, again.stderr);
    expect(w.analyticsWrites()).toBe(written);

    rmSync(filler.path);
    await w.untilClean(args);

    const { verdict } = await w.report(
      'disk-full',
      `the SQLite state directory (a ${TMPFS_SIZE} tmpfs) filled up during consume --once: exit 1 with a clear error, a rerun while full fails the same way, after the space is freed a rerun completes; ${scale.customers} customers`,
      {
        'filled after writes': filledAt,
        'failed while full': `${code}, then ${again.code}`,
        'filler bytes': filler.bytes,
        'analytics writes': w.analyticsWrites(),
      },
    );
    expectClean(verdict);
  });
});
