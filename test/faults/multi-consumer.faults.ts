import { afterAll, describe, expect, it } from 'vitest';
import { startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
let world: FaultWorld | undefined;
const members = new Map<string, Child>();
afterAll(async () => {
  for (const child of members.values()) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  await world?.close();
});

/**
 * Who joins and leaves, and when: after this share of the customers has been written at Analytics.
 * Two members, then three, one SIGKILLed (its partitions wait for its session to expire), one
 * leaving with SIGTERM (a clean leave), and a late joiner taking part of what is left.
 */
const CHANGES: { at: number; member: string; action: 'join' | 'SIGKILL' | 'SIGTERM' }[] = [
  { at: 0, member: 'A', action: 'join' },
  { at: 0.1, member: 'B', action: 'join' },
  { at: 0.25, member: 'C', action: 'join' },
  { at: 0.4, member: 'A', action: 'SIGKILL' },
  { at: 0.55, member: 'B', action: 'SIGTERM' },
  { at: 0.7, member: 'D', action: 'join' },
];

describe('two and three consume instances on shared PostgreSQL state, joining and leaving', () => {
  it('delivers every record once', async () => {
    world = await FaultWorld.start({
      tag: 'faults-multi-consumer',
      seed: 1307,
      customers: scale.memberCustomers,
      products: scale.memberProducts,
      state: 'postgres',
      // Slow enough deliveries that every membership change lands while records are still flowing.
      analyticsFaults: { latencyMs: 60 },
    });
    const w = world;
    await w.untilClean(w.fetchArgs('inventory'));
    await w.untilClean(w.fetchArgs('crm', ['--crm-page-size', '500']));

    // Long-running members (no --once: a --once drain takes the group's lock, members share it).
    const memberArgs = [
      '--json',
      ...w.h.cliArgs(),
      '--session-timeout',
      '6',
      '--batch-size',
      '10',
      '--analytics-batch-size',
      '10',
      '--max-delivery-delay',
      '1',
    ];
    const stopped = new Set<string>();
    const exits: string[] = [];
    /** A member that ends without being told to is a failure of the scenario, not a leave. */
    const noneDied = () => {
      for (const [name, child] of members) {
        if (!stopped.has(name) && (child.process.exitCode !== null || child.process.signalCode !== null))
          throw new Error(
            `member ${name} exited ${child.process.exitCode} on its own:\n${child.stderr().slice(-3000)}`,
          );
      }
    };
    const total = scale.memberCustomers;
    const log: string[] = [];
    for (const change of CHANGES) {
      await waitFor(
        `${Math.round(change.at * 100)} % written before ${change.member} ${change.action}`,
        () => {
          noneDied();
          return w.analyticsWrites() >= change.at * total;
        },
        300_000,
      );
      const at = `${w.analyticsWrites()}w`;
      if (change.action === 'join') {
        members.set(change.member, startSyncctl(memberArgs, w.env));
        log.push(`${change.member} joined at ${at}`);
        continue;
      }
      const child = members.get(change.member)!;
      stopped.add(change.member);
      child.process.kill(change.action);
      const { code, signal } = await child.exited;
      if (change.action === 'SIGTERM') {
        // A clean leave: the batch in flight finished, delivered and committed, exit 0.
        expect(code, child.stderr().slice(-3000)).toBe(0);
        exits.push(`${change.member} ${code}`);
      } else {
        expect(signal).toBe('SIGKILL');
        w.kills++;
      }
      log.push(`${change.member} ${change.action} at ${at}`);
    }

    let polled = 0;
    await waitFor(
      'every record at Analytics',
      () => {
        noneDied();
        // The join is recomputed at most every half second: it is the costly part of the poll.
        if (Date.now() - polled < 500) return false;
        polled = Date.now();
        return w.verdict().missing.length === 0;
      },
      300_000,
    );
    for (const [name, child] of members) {
      if (stopped.has(name)) continue;
      stopped.add(name);
      child.process.kill('SIGTERM');
      const { code } = await child.exited;
      expect(code, child.stderr().slice(-3000)).toBe(0);
      exits.push(`${name} ${code}`);
    }
    // Nothing left behind: no lag, no delivery pending in the shared outbox.
    const after = JSON.parse((await w.untilClean(w.consumeArgs())).stdout) as {
      delivered: number;
      pendingDeliveries: number;
      lagLeft: { total: number };
    };

    const { verdict } = await w.report(
      'multi-consumer',
      `consume instances (one group, shared PostgreSQL state) joining and leaving mid-run: two, then three, one SIGKILLed, one SIGTERMed, a fourth joining late; ${total} customers`,
      {
        'analytics writes': w.analyticsWrites(),
        membership: log.join(', '),
        'exit on SIGTERM': exits.join(', '),
        'delivered by the final --once': after.delivered,
      },
    );
    expectClean(verdict);
    expect(after).toMatchObject({ delivered: 0, pendingDeliveries: 0, lagLeft: { total: 0 } });
  });
});
