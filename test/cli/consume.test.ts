import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor, type Child } from '../helpers/cli.js';
import { firstRound, publishAll, SourceWorld } from '../helpers/consume-data.js';
import {
  committedMessages,
  createHarness,
  expectNothingStoredTwice,
  expectViewMatches,
  mergedCounts,
  writeLog,
  writesPerCustomer,
  type Harness,
  type StateKind,
} from '../helpers/consume-harness.js';

const harnesses: Harness[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const h of harnesses.splice(0)) await h.close();
});

function start(h: Harness, extra: string[]): Child {
  const run = startSyncctl([...h.cliArgs(), ...extra], isolatedEnv(h.cliEnv()));
  children.push(run.process);
  return run;
}

async function runOnce(h: Harness, extra: string[] = []) {
  return runSyncctl([...h.cliArgs(), '--once', '--batch-size', '20', ...extra], {
    env: isolatedEnv(h.cliEnv()),
    timeoutMs: 120_000,
  });
}

describe.each<StateKind>(['sqlite', 'postgres'])('syncctl consume killed with SIGKILL (%s state)', (kind) => {
  it('a rerun after kills at several points leaves Analytics complete with nothing stored twice', async () => {
    const h = await createHarness(kind, { faults: { latencyMs: 25 } });
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 400, 40);
    await publishAll([
      { topic: h.customerTopic, envelopes: customerEnvelopes },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    const kill = async (run: Child) => {
      run.process.kill('SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');
    };

    // 1. Early, a few deliveries in.
    const first = start(h, ['--once', '--batch-size', '20', '--session-timeout', '6']);
    await waitFor('first deliveries', async () => (await writeLog(h.server)).length >= 20);
    await kill(first);

    // 2. Between delivery and commit: Analytics stores the batch, the answer never comes.
    h.server.setFaults({ latencyMs: 25, storeThenHang: { first: 1 } });
    const second = start(h, ['--once', '--batch-size', '20', '--session-timeout', '6']);
    await waitFor('a stored batch without an answer', async () =>
      h.server.stats().some((s) => s.outcome === 'stored-then-hang'),
    );
    await kill(second);

    // 3. Later, mid-run again.
    h.server.setFaults({ latencyMs: 25 });
    const before = (await writeLog(h.server)).length;
    const third = start(h, ['--once', '--batch-size', '20', '--session-timeout', '6']);
    await waitFor('more deliveries', async () => (await writeLog(h.server)).length >= before + 60);
    await kill(third);

    h.server.setFaults({});
    const rerun = await runOnce(h, ['--json']);
    expect(rerun.stderr).not.toMatch(/error/);
    expect(rerun.code).toBe(ExitCode.Ok);
    const summary = JSON.parse(rerun.stdout) as {
      status: string;
      delivered: number;
      lagLeft: { total: number };
      pendingDeliveries: number;
    };
    expect(summary).toMatchObject({ status: 'completed', lagLeft: { total: 0 }, pendingDeliveries: 0 });
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
    // The kills left real work behind: uncommitted messages and undelivered customers.
    expect(summary.delivered).toBeGreaterThan(0);
    // The batch stored behind the hung answer was resent: under its own key (answered from the
    // idempotency table) or inside another batch (its records acknowledged as duplicates).
    const hung = h.server.stats().find((s) => s.outcome === 'stored-then-hang');
    const hungKeys = (await writeLog(h.server))
      .filter((e) => e.batchKey === hung?.batchKey)
      .map((e) => e.key);
    expect(hungKeys.length).toBeGreaterThan(0);
  });
});

describe.each<StateKind>(['sqlite', 'postgres'])(
  'syncctl consume killed between merge and deferred delivery (%s state)',
  (kind) => {
    it('loses nothing: the rerun delivers every customer, once', async () => {
      const h = await createHarness(kind);
      harnesses.push(h);
      const world = new SourceWorld();
      const { customerEnvelopes, productEnvelopes } = firstRound(world, 200, 30);
      await publishAll([
        { topic: h.customerTopic, envelopes: customerEnvelopes },
        { topic: h.productTopic, envelopes: productEnvelopes },
      ]);
      // Long-running, with a delay and a backlog (20 × 50) nothing here reaches: everything is
      // merged and marked, then waits for a delivery that never comes.
      const run = start(h, ['--max-delivery-delay', '600', '--batch-size', '50', '--session-timeout', '6']);
      await waitFor('every message merged', async () => {
        const counts = await mergedCounts(h.state);
        return counts.customers === 200 && counts.products === 30 && counts.dirty === 200;
      });
      expect(await writeLog(h.server)).toHaveLength(0);
      expect(await committedMessages(h)).toBe(0);
      run.process.kill('SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');

      const rerun = await runOnce(h, ['--json']);
      expect(rerun.code, rerun.stderr).toBe(ExitCode.Ok);
      const summary = JSON.parse(rerun.stdout) as Record<string, unknown>;
      // Nothing was committed: every message is read again and merges to what is stored already;
      // the marks left in the outbox are what gets delivered.
      expect(summary).toMatchObject({
        status: 'completed',
        consumed: 230,
        merged: 0,
        unchanged: 230,
        delivered: 200,
        pendingDeliveries: 0,
        lagLeft: { total: 0 },
      });
      const expected = world.expectedView();
      await expectViewMatches(h.server, expected);
      const log = await expectNothingStoredTwice(h.server);
      expect(writesPerCustomer(log)).toEqual(new Map([...expected.keys()].map((id) => [id, 1])));
    });
  },
);

describe('syncctl consume', () => {
  it('runs until SIGTERM, finishes the batch in flight, commits and exits 0 with a summary', async () => {
    const h = await createHarness('sqlite', { faults: { latencyMs: 25 } });
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 300, 30);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const running = start(h, ['--batch-size', '10', '--shutdown-timeout', '20']);
    await waitFor('deliveries', async () => (await writeLog(h.server)).length >= 30);
    const signalledAt = Date.now();
    running.process.kill('SIGTERM');
    const { code } = await running.exited;
    expect(Date.now() - signalledAt).toBeLessThan(20_000);
    const [stdout, stderr] = [running.stdout(), running.stderr()];
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/SIGTERM: finishing the batch in flight/);
    expect(stdout).toMatch(/^consumed \d+ message\(s\) from /m);
    expect(stdout).toMatch(/^delivered \d+ unified record\(s\)/m);

    const rest = await runOnce(h);
    expect(rest.code, rest.stderr).toBe(ExitCode.Ok);
    await expectViewMatches(h.server, world.expectedView());
    await expectNothingStoredTwice(h.server);
  });

  it('--once with nothing to do exits 0; dead-lettered records make it exit 3; Analytics down 75; refused token 1', async () => {
    const h = await createHarness('sqlite');
    harnesses.push(h);
    const empty = await runOnce(h, ['--json']);
    expect(empty.code, empty.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(empty.stdout)).toMatchObject({
      consumed: 0,
      delivered: 0,
      exitCode: 0,
      lagLeft: { total: 0 },
    });

    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 10, 5);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      {
        topic: h.customerTopic,
        envelopes: customerEnvelopes.slice(0, 5),
        raw: [{ key: 'bad', value: 'nope' }],
      },
    ]);
    const partial = await runOnce(h);
    expect(partial.code).toBe(ExitCode.Partial);
    expect(partial.stderr).toMatch(/1 record\(s\) dead-lettered/);
    expect(partial.stdout).toMatch(/dead-lettered 1 \(1 invalid message\(s\), 0 refused by Analytics\)/);

    await publishAll([{ topic: h.customerTopic, envelopes: customerEnvelopes.slice(5) }]);
    const down = await runSyncctl([...h.cliArgs(), '--once'], {
      env: isolatedEnv({
        ...h.cliEnv(),
        SYNCCTL_ANALYTICS_URL: 'http://127.0.0.1:9/',
        SYNCCTL_ANALYTICS_RETRIES: '1',
      }),
    });
    expect(down.code).toBe(ExitCode.TempFailure);
    expect(down.stderr).toMatch(/syncctl: error: .*Analytics/);
    expect(down.stderr).not.toContain(h.cliEnv().SYNCCTL_ANALYTICS_TOKEN);

    const refused = await runSyncctl([...h.cliArgs(), '--once'], {
      env: isolatedEnv({ ...h.cliEnv(), SYNCCTL_ANALYTICS_TOKEN: 'wrong-token-a1b2c3d4' }),
    });
    expect(refused.code).toBe(ExitCode.Failure);
    expect(refused.stderr).toMatch(/401/);
    expect(refused.stderr).not.toContain('wrong-token-a1b2c3d4');

    const after = await runOnce(h);
    expect(after.code, after.stderr).toBe(ExitCode.Ok);
    await expectViewMatches(h.server, world.expectedView());
  });

  it('takes group, topics, batch size and state from SYNCCTL_* variables', async () => {
    const h = await createHarness('postgres');
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 12, 4);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const run = await runSyncctl(['--json', 'consume', '--once'], {
      env: isolatedEnv({
        ...h.cliEnv(),
        SYNCCTL_BROKERS: h.cliArgs()[1],
        SYNCCTL_STATE: h.state,
        SYNCCTL_GROUP: h.group,
        SYNCCTL_CUSTOMER_TOPIC: h.customerTopic,
        SYNCCTL_PRODUCT_TOPIC: h.productTopic,
        SYNCCTL_DLQ_TOPIC: h.dlqTopic,
        SYNCCTL_BATCH_SIZE: '5',
      }),
    });
    expect(run.code, run.stderr).toBe(ExitCode.Ok);
    const summary = JSON.parse(run.stdout) as {
      group: string;
      topics: object;
      delivered: number;
      sinkBatches: number;
    };
    expect(summary).toMatchObject({
      group: h.group,
      topics: { customers: h.customerTopic, products: h.productTopic, deadLetter: h.dlqTopic },
    });
    // 12 customers, each once (--once reads the products first), at most 5 per Analytics request.
    expect(summary.delivered).toBe(12);
    expect(summary.sinkBatches).toBeGreaterThanOrEqual(Math.ceil(summary.delivered / 5));
    await expectViewMatches(h.server, world.expectedView());
  });

  it('exits 75 when Kafka cannot be reached', async () => {
    const h = await createHarness('sqlite');
    harnesses.push(h);
    const args = h.cliArgs();
    args[1] = '127.0.0.1:9';
    const run = await runSyncctl([...args, '--once'], { env: isolatedEnv(h.cliEnv()) });
    expect(run.code).toBe(ExitCode.TempFailure);
    expect(run.stderr).toMatch(/cannot reach Kafka at 127\.0\.0\.1:9/);
  });

  it('fails with a usage error and a hint when the topics do not exist', async () => {
    const h = await createHarness('sqlite');
    harnesses.push(h);
    const run = await runOnce(h, ['--dlq-topic', 'no-such-dlq-topic-x']);
    expect(run.code).toBe(ExitCode.Usage);
    expect(run.stderr).toMatch(/topic "no-such-dlq-topic-x" does not exist/);
    expect(run.stderr).toMatch(/syncctl topics ensure/);
  });

  it("--group '' is a usage error naming --group, not kafkajs's \"Invalid groupId\"", async () => {
    const h = await createHarness('sqlite');
    harnesses.push(h);
    const run = await runOnce(h, ['--group', '']);
    expect(run.code, run.stderr).toBe(ExitCode.Usage);
    expect(run.stderr).toMatch(/--group/);
    expect(run.stderr).not.toMatch(/Invalid groupId/);
  });
});
