import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, stopBroker, type BrokerHandle } from '../../src/sandbox/kafka-broker.js';
import { createKafka } from '../../src/connectors/kafka.js';
import { startSyncctl, waitFor } from '../helpers/cli.js';
import { createTopic, uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';
import { expectClean, FaultWorld } from './scenario.js';
import { faultScale } from './scale.js';

const scale = faultScale();
const ownKafka = () => createKafka({ brokers: [broker!.brokers], clientId: uniqueName('faults-restart') });
const OUTAGE_MS = 3_000;
let dir: string;
let broker: BrokerHandle | undefined;
let world: FaultWorld | undefined;

// A broker of this scenario's own: stopping the suite's broker would break every other scenario.
beforeAll(async () => {
  dir = tempDir('syncctl-faults-broker-');
  broker = await startBroker({ dir });
});
afterAll(async () => {
  await world?.close();
  if (broker) await stopBroker(broker.pid);
});

/** Stops the broker while `args` runs (once `progress` has moved `step`), restarts it on the same port and data. */
async function restartDuring(
  w: FaultWorld,
  args: string[],
  progress: () => number,
  step: number,
): Promise<string> {
  const child = startSyncctl(args, w.env);
  let finished = false;
  void child.exited.then(() => (finished = true));
  const base = progress();
  await waitFor('the restart point', () => finished || progress() >= base + step, 600_000);
  if (finished) return 'finished before the restart';
  const at = progress() - base;
  await stopBroker(broker!.pid);
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
  broker = await startBroker({ dir, port: broker!.port });
  // The run either rides the outage out or stops with a temporary failure; it must not hang.
  await waitFor('the run to end after the restart', () => finished, 300_000).catch((error: unknown) => {
    child.process.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; its stderr:\n${child.stderr().slice(-3000)}`);
  });
  const { code, signal } = await child.exited;
  if (code !== 0 && code !== 75)
    throw new Error(`exit ${code} (${signal}) after the restart:\n${child.stderr().slice(-3000)}`);
  return `at ${at}, exit ${code}`;
}

describe('broker restarted during publish and during consume', () => {
  it('loses nothing and stores nothing twice', async () => {
    world = await FaultWorld.start({
      tag: 'faults-broker-restart',
      seed: 1305,
      customers: scale.customers,
      products: scale.products,
      kafka: {
        brokers: broker!.brokers,
        kafka: () => ownKafka(),
        createTopic: (name, partitions) => createTopic(name, partitions, ownKafka()),
      },
      // Slow enough that the outage lands in the middle of each run.
      crmFaults: { latencyMs: 100 },
      analyticsFaults: { latencyMs: 100 },
    });
    const w = world;
    const pages = Math.ceil(scale.customers / 10);
    const publish = await restartDuring(
      w,
      w.fetchArgs('crm', ['--crm-page-size', '10']),
      () => w.crm.control.stats().requests,
      Math.floor(pages / 3),
    );
    await w.untilClean(w.fetchArgs('crm', ['--crm-page-size', '10']));
    await w.untilClean(w.fetchArgs('inventory'));
    const consume = await restartDuring(
      w,
      w.consumeArgs(['--batch-size', '10', '--analytics-batch-size', '10']),
      () => w.analyticsWrites(),
      Math.floor(scale.customers / 3),
    );
    await w.untilClean(w.consumeArgs());

    const { verdict } = await w.report(
      'broker-restart',
      `the broker stopped for ${OUTAGE_MS / 1000} s and restarted (same port and data) during fetch --publish and during consume, both rerun to completion; ${scale.customers} customers`,
      { 'restart in publish': publish, 'restart in consume': consume },
    );
    expectClean(verdict);
    expect(publish).toMatch(/^at /);
    expect(consume).toMatch(/^at /);
  });
});
