import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DLQ_HEADER } from '../../src/connectors/dead-letter.js';
import { ExitCode } from '../../src/errors.js';
import { openDb } from '../../src/state/db.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor } from '../helpers/cli.js';
import { customerId, firstRound, productId, publishAll, SourceWorld } from '../helpers/consume-data.js';
import {
  createHarness,
  expectNothingStoredTwice,
  expectViewMatches,
  mergedCounts,
  writeLog,
  writesPerCustomer,
  type Harness,
} from '../helpers/consume-harness.js';
import { readAll, testBrokers, testKafka } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

function replayArgs(h: Harness, extra: string[]): string[] {
  return [
    '--brokers',
    testBrokers(),
    '--state',
    h.state,
    'replay-dlq',
    '--dlq-topic',
    h.dlqTopic,
    '--customer-topic',
    h.customerTopic,
    '--product-topic',
    h.productTopic,
    '--group',
    h.group,
    ...extra,
  ];
}

async function endOffsets(topic: string): Promise<string> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    return JSON.stringify((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * On a freshly started, loaded broker the group coordinator may still be loading its offsets
 * partitions; consume then exits 75 ("coordinator is loading"). These tests are about replay, so
 * they wait for the coordinator first.
 */
async function coordinatorReady(h: Harness): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await waitFor(
      'the group coordinator',
      async () => {
        try {
          await admin.fetchOffsets({ groupId: h.group, topics: [h.customerTopic] });
          return true;
        } catch {
          return false;
        }
      },
      90_000,
    );
  } finally {
    await admin.disconnect();
  }
}

async function setMaxMessageBytes(topic: string, bytes: number): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2 /* TOPIC */,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

async function progressRows(state: string): Promise<number> {
  const db = await openDb(state);
  try {
    return Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM replay_dlq_progress'))[0]?.n);
  } catch {
    return 0;
  } finally {
    await db.close();
  }
}

interface Letter {
  partition: number;
  offset: string;
  kind: string;
  key: string | null;
  value: string | null;
  attempts: number;
  replayCount: number;
  customerId: string | null;
  error: { class: string };
}

describe('syncctl replay-dlq', () => {
  it('round trip: a poison message and a refused record are listed, corrected, replayed once and delivered once', async () => {
    const refused = customerId(4);
    const h = await createHarness('sqlite', { faults: { poison: { customerIds: [refused] } } });
    harnesses.push(h);
    await coordinatorReady(h);
    const env = isolatedEnv(h.cliEnv());
    const cli = (extra: string[]) => runSyncctl(replayArgs(h, extra), { env, timeoutMs: 120_000 });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 10, 5);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      {
        topic: h.customerTopic,
        envelopes: customerEnvelopes,
        raw: [
          { key: 'poison-1', value: '{"not": "an envelope"}', headers: { 'x-origin': 'test' } },
          { key: 'poison-2', value: 'garbage', headers: { 'x-origin': 'test' } },
        ],
      },
    ]);
    const consume = () => runSyncctl([...h.cliArgs(), '--once', '--json'], { env, timeoutMs: 120_000 });
    const first = await consume();
    expect(first.code, first.stderr).toBe(ExitCode.Partial);

    // List: NDJSON, one object per letter.
    const listed = await cli(['--json']);
    expect(listed.code, listed.stderr).toBe(ExitCode.Ok);
    const letters = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Letter);
    const messages = letters.filter((l) => l.kind === 'source-message');
    expect(messages.map((l) => l.key).sort()).toEqual(['poison-1', 'poison-2']);
    const records = letters.filter((l) => l.kind === 'unified-record');
    expect(records.length).toBeGreaterThanOrEqual(1);
    expect(new Set(records.map((l) => l.customerId))).toEqual(new Set([refused]));

    // Table, count, show, filters.
    const table = await cli([]);
    expect(table.code, table.stderr).toBe(ExitCode.Ok);
    expect(table.stdout).toMatch(/InvalidEnvelopeError/);
    expect(table.stdout).toMatch(/SinkPermanentError/);
    const counted = await cli(['--count', '--json']);
    const counts = JSON.parse(counted.stdout) as {
      total: number;
      byErrorClass: { errorClass: string; count: number }[];
    };
    expect(counts.total).toBe(letters.length);
    expect(counts.byErrorClass.find((g) => g.errorClass === 'InvalidEnvelopeError')?.count).toBe(2);
    const poison1 = messages.find((l) => l.key === 'poison-1') as Letter;
    const shown = await cli(['--show', poison1.offset, '--partition', String(poison1.partition)]);
    expect(shown.code, shown.stderr).toBe(ExitCode.Ok);
    expect(shown.stdout).toContain('{"not": "an envelope"}');
    expect(shown.stdout).toContain(`${DLQ_HEADER.sourceTopic}: ${h.customerTopic}`);
    const filtered = await cli(['--json', '--error-class', 'InvalidEnvelopeError', '--key', 'poison-2']);
    expect(filtered.stdout.trim().split('\n')).toHaveLength(1);
    const byText = await cli(['--json', '--error', 'refused by this analytics', '--min-attempts', '1']);
    expect(byText.stdout.trim().split('\n').length).toBe(records.length);
    const none = await cli(['--json', '--until', '2000-01-01T00:00:00Z']);
    expect(none.stdout.trim()).toBe('');
    const byOffset = await cli(['--json', '--offset', `${poison1.partition}:${poison1.offset}`]);
    expect((JSON.parse(byOffset.stdout.trim()) as Letter).key).toBe('poison-1');

    // Reading left no consumer group behind (and so no committed offsets).
    const admin = testKafka().admin();
    await admin.connect();
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
    await admin.disconnect();
    expect(groups.filter((g) => g.startsWith('syncctl-replay-dlq-'))).toEqual([]);

    // A dry run changes nothing on the broker, the state store or Analytics.
    const before = {
      dlq: await endOffsets(h.dlqTopic),
      customers: await endOffsets(h.customerTopic),
      log: (await writeLog(h.server)).length,
      state: await mergedCounts(h.state),
    };
    const dry = await cli(['--replay', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(ExitCode.Partial); // poison-2 is still invalid
    const plan = JSON.parse(dry.stdout) as {
      dryRun: boolean;
      items: { action: string; target: string; key: string }[];
    };
    expect(plan.dryRun).toBe(true);
    expect(plan.items.find((i) => i.key === 'poison-1')).toMatchObject({ action: 'fail-again' });
    expect(plan.items.filter((i) => i.action === 'remark')).toHaveLength(records.length);
    expect(await endOffsets(h.dlqTopic)).toBe(before.dlq);
    expect(await endOffsets(h.customerTopic)).toBe(before.customers);
    expect((await writeLog(h.server)).length).toBe(before.log);
    expect(await mergedCounts(h.state)).toEqual(before.state);
    expect(await progressRows(h.state)).toBe(0);

    // The operator fixes Analytics and corrects poison-1: a valid customer envelope.
    h.server.setFaults({});
    const fixedId = customerId(11);
    const corrected = world.customerEnvelope(fixedId, 1, { productIds: [productId(1)] });
    const file = join(tempDir('syncctl-replay-'), 'fixed.ndjson');
    writeFileSync(
      file,
      [
        JSON.stringify({ ...poison1, value: corrected }),
        ...records.map((r) => JSON.stringify({ partition: r.partition, offset: r.offset, value: r.value })),
      ].join('\n'),
    );
    const replay = await cli(['--replay', '--from-file', file, '--deliver', '--json']);
    expect(replay.code, replay.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(replay.stdout)).toMatchObject({
      replayed: 1 + records.length,
      republished: 1,
      remarked: records.length,
      failedAgain: 0,
      delivery: { delivered: 1, deadLetteredRecords: 0 },
    });
    // The corrected message is back on its topic with its key, headers and a replay count.
    const republished = (await readAll(h.customerTopic)).filter((m) => m.headers['syncctl-replay-count']);
    expect(republished).toHaveLength(1);
    expect(republished[0]).toMatchObject({
      key: 'poison-1',
      headers: { 'x-origin': 'test', 'syncctl-replay-count': '1' },
    });

    const second = await consume();
    expect(second.code, second.stderr).toBe(ExitCode.Ok);
    await expectViewMatches(h.server, world.expectedView());
    const log = await expectNothingStoredTwice(h.server);
    expect(writesPerCustomer(log).get(refused)).toBe(1);
    expect(writesPerCustomer(log).get(fixedId)).toBe(1);

    // The same replay again does nothing.
    const offsets = await endOffsets(h.customerTopic);
    const again = await cli(['--replay', '--from-file', file, '--deliver', '--json']);
    expect(again.code, again.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(again.stdout)).toMatchObject({
      replayed: 0,
      skipped: 1 + records.length,
      failedAgain: 0,
    });
    expect(await endOffsets(h.customerTopic)).toBe(offsets);
    expect((await writeLog(h.server)).length).toBe(log.length);

    // poison-2 replayed as it is fails again: back to the dead-letter topic with attempts raised.
    const dlqBefore = (await readAll(h.dlqTopic)).length;
    const failing = await cli(['--replay', '--key', 'poison-2', '--json']);
    expect(failing.code, failing.stderr).toBe(ExitCode.Partial);
    expect(JSON.parse(failing.stdout)).toMatchObject({ replayed: 0, failedAgain: 1 });
    const dlq = await readAll(h.dlqTopic);
    expect(dlq).toHaveLength(dlqBefore + 1);
    const back = dlq.filter((m) => m.key === 'poison-2').at(-1);
    expect(back?.headers).toMatchObject({
      [DLQ_HEADER.attempts]: '2',
      'syncctl-replay-count': '1',
      'x-origin': 'test',
    });
    const onceMore = await cli(['--replay', '--key', 'poison-2', '--json']);
    // The original is done; the new letter (replay count 1) fails again in its turn.
    expect(JSON.parse(onceMore.stdout)).toMatchObject({ skipped: 1, failedAgain: 1 });

    // --edit: the operator's editor gets the letters as NDJSON; here it writes a corrected last letter.
    const latest = (await cli(['--json', '--key', 'poison-2'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Letter)
      .at(-1) as Letter;
    const editedId = customerId(12);
    const edited = world.customerEnvelope(editedId, 1, { productIds: [] });
    const prepared = join(tempDir('syncctl-replay-'), 'prepared.ndjson');
    writeFileSync(
      prepared,
      `${JSON.stringify({ partition: latest.partition, offset: latest.offset, value: edited })}\n`,
    );
    const viaEditor = await runSyncctl(replayArgs(h, ['--replay', '--edit', '--key', 'poison-2', '--json']), {
      env: { ...env, EDITOR: `cp '${prepared}'` },
      timeoutMs: 120_000,
    });
    expect(viaEditor.code, viaEditor.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(viaEditor.stdout)).toMatchObject({ selected: 1, republished: 1, failedAgain: 0 });
    const third = await consume();
    expect(third.code, third.stderr).toBe(ExitCode.Ok);
    await expectViewMatches(h.server, world.expectedView());
    expect(writesPerCustomer(await expectNothingStoredTwice(h.server)).get(editedId)).toBe(1);
    // About fifteen CLI runs, each a cold node start: minutes on a loaded 2-core machine.
  }, 300_000);

  it('refuses truncated letters unless --from-file gives the value; a record refused again returns with attempts raised', async () => {
    const refused = customerId(2);
    const h = await createHarness('sqlite', { faults: { poison: { customerIds: [refused] } } });
    harnesses.push(h);
    await coordinatorReady(h);
    await setMaxMessageBytes(h.dlqTopic, 8_192);
    const env = isolatedEnv(h.cliEnv());
    const cli = (extra: string[]) => runSyncctl(replayArgs(h, extra), { env, timeoutMs: 120_000 });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 5, 3);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      {
        topic: h.customerTopic,
        envelopes: customerEnvelopes,
        raw: [{ key: 'big', value: `{"x": "${'y'.repeat(20_000)}"}` }],
      },
    ]);
    const first = await runSyncctl([...h.cliArgs(), '--once'], { env, timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(ExitCode.Partial);
    const letters = (await cli(['--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Letter & { truncated: boolean });
    const big = letters.find((l) => l.key === 'big') as Letter & { truncated: boolean };
    expect(big.truncated).toBe(true);
    const original = letters.filter((l) => l.kind === 'unified-record');
    expect(original.length).toBeGreaterThanOrEqual(1);

    // Analytics still refuses the record: it comes back with more attempts; the truncated letter is refused.
    const replay = await cli(['--replay', '--deliver', '--json']);
    expect(replay.code, replay.stderr).toBe(ExitCode.Partial);
    const summary = JSON.parse(replay.stdout) as {
      refused: number;
      remarked: number;
      failedAgain: number;
      items: { dlq: string; action: string; reason: string | null }[];
    };
    expect(summary).toMatchObject({ refused: 1, remarked: original.length });
    expect(summary.failedAgain).toBeGreaterThanOrEqual(1);
    expect(summary.items.find((i) => i.dlq === `${big.partition}:${big.offset}`)).toMatchObject({
      action: 'refuse',
      reason: expect.stringMatching(/truncated/) as unknown,
    });
    const after = (await readAll(h.dlqTopic)).filter((m) => m.headers[DLQ_HEADER.customerId] === refused);
    const maxBefore = Math.max(...original.map((l) => l.attempts));
    expect(after.length).toBeGreaterThan(original.length);
    expect(Number(after.at(-1)?.headers[DLQ_HEADER.attempts])).toBeGreaterThan(maxBefore);

    // --from-file supplies the truncated letter's value.
    const file = join(tempDir('syncctl-replay-'), 'big.ndjson');
    const envelope = world.customerEnvelope(customerId(6), 1, { productIds: [] });
    writeFileSync(
      file,
      `${JSON.stringify({ partition: big.partition, offset: big.offset, value: envelope })}\n`,
    );
    const fixed = await cli(['--replay', '--from-file', file, '--json']);
    expect(fixed.code, fixed.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(fixed.stdout)).toMatchObject({ republished: 1, refused: 0 });
  });

  it('SIGKILL during a replay with --deliver, then a rerun: every record delivered exactly once', async () => {
    const refused = Array.from({ length: 60 }, (_, i) => customerId(i + 1));
    const h = await createHarness('sqlite', { faults: { poison: { customerIds: refused, mode: 'record' } } });
    harnesses.push(h);
    await coordinatorReady(h);
    const env = isolatedEnv(h.cliEnv());
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 60, 5);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const first = await runSyncctl([...h.cliArgs(), '--once'], { env, timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(ExitCode.Partial);
    expect(await writeLog(h.server)).toHaveLength(0);

    h.server.setFaults({ latencyMs: 300 });
    const args = replayArgs(h, ['--replay', '--deliver', '--batch-size', '5', '--json']);
    const run = startSyncctl(args, env);
    await waitFor('some deliveries', async () => (await writeLog(h.server)).length >= 10);
    run.process.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
    expect((await writeLog(h.server)).length).toBeLessThan(60);

    h.server.setFaults({});
    const rerun = await runSyncctl(args, { env, timeoutMs: 120_000 });
    expect(rerun.code, rerun.stderr).toBe(ExitCode.Ok);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ failedAgain: 0, delivery: { pending: 0 } });
    await expectViewMatches(h.server, world.expectedView());
    const log = await expectNothingStoredTwice(h.server);
    expect(writesPerCustomer(log)).toEqual(new Map(refused.map((id) => [id, 1])));
    const again = await runSyncctl(args, { env, timeoutMs: 120_000 });
    expect(JSON.parse(again.stdout)).toMatchObject({ replayed: 0, failedAgain: 0 });
    expect(await writeLog(h.server)).toHaveLength(log.length);
  });
});
