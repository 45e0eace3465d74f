import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startBroker, stopBroker } from '../src/sandbox/kafka-broker.js';
import { watchBroker } from './helpers/broker-watchdog.js';

declare module 'vitest' {
  export interface ProvidedContext {
    brokers: string;
  }
}

/** One real Kafka broker for the whole run; every test file uses its own topics and groups. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'syncctl-test-kafka-'));
  const broker = await startBroker({ dir });
  watchBroker(process.pid, broker.pid, dir);
  project.provide('brokers', broker.brokers);
  process.env.SYNCCTL_TEST_BROKERS = broker.brokers;
  return async () => {
    await stopBroker(broker.pid);
    rmSync(dir, { recursive: true, force: true });
  };
}
