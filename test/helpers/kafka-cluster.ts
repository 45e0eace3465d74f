import type { Kafka } from 'kafkajs';
import { createKafka, parseBrokers, waitForTopicLeaders, withAdmin } from '../../src/connectors/kafka.js';
import {
  isAlive,
  spawnNode,
  startCluster,
  stopProcess,
  waitForNode,
  waitForRegistration,
  type ClusterHandle,
  type KafkaNode,
} from '../../src/sandbox/kafka-broker.js';
import { watchBroker } from './broker-watchdog.js';
import { uniqueName } from './kafka.js';
import { tempDir } from './temp.js';

/**
 * A KRaft cluster of its own for a test file (the shared test broker is a single node): real
 * failover needs other brokers to take over a dead leader's partitions.
 */
export interface TestCluster extends ClusterHandle {
  kafka(): Kafka;
  node(id: number): KafkaNode;
  /** The node leading a partition now. */
  leaderOf(topic: string, partition: number): Promise<number>;
  /** SIGKILL, as a crashed machine: no controlled shutdown, no leadership handed over first. */
  kill(id: number): Promise<void>;
  /**
   * SIGSTOP: the node hangs with its sockets open, so a request already sent to it stays in flight
   * (a kill right after lands mid-request for certain, not between two requests).
   */
  freeze(id: number): void;
  /** Starts a killed node again and waits until it has rejoined the cluster. */
  restart(id: number): Promise<void>;
  /** Waits until every partition of the topics has all `replicas` in sync again (after a restart). */
  waitForInSync(topics: string[], replicas?: number, timeoutMs?: number): Promise<void>;
  createTopic(name: string, partitions: number): Promise<void>;
  stop(): Promise<void>;
}

const HEAP = '384m';
const READY_TIMEOUT_MS = 180_000;

export async function startTestCluster(size = 3): Promise<TestCluster> {
  const dir = tempDir('syncctl-test-cluster-');
  const handle = await startCluster({ dir, brokers: size, heap: HEAP, readyTimeoutMs: READY_TIMEOUT_MS });
  // A runner killed without its teardown must not leave three JVMs behind.
  for (const node of handle.nodes) watchBroker(process.pid, node.pid);
  const brokers = parseBrokers(handle.brokers);
  const kafka = () => createKafka({ brokers, clientId: uniqueName('test-cluster') });
  const node = (id: number) => {
    const found = handle.nodes.find((n) => n.id === id);
    if (!found) throw new Error(`no node ${id} in the test cluster`);
    return found;
  };
  const cluster: TestCluster = {
    ...handle,
    kafka,
    node,
    async leaderOf(topic, partition) {
      return withAdmin(kafka(), brokers, async (admin) => {
        const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
        const leader = metadata.topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
        if (leader === undefined || leader < 0) throw new Error(`${topic}[${partition}] has no leader`);
        return leader;
      });
    },
    async kill(id) {
      const { pid } = node(id);
      process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    freeze(id) {
      process.kill(node(id).pid, 'SIGSTOP');
    },
    async restart(id) {
      const n = node(id);
      if (isAlive(n.pid)) throw new Error(`node ${id} is still running`);
      n.pid = spawnNode(n.dir, HEAP);
      watchBroker(process.pid, n.pid);
      const deadline = Date.now() + READY_TIMEOUT_MS;
      await waitForNode(n, deadline);
      await waitForRegistration(handle, deadline);
    },
    async waitForInSync(topics, replicas = size, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      await withAdmin(kafka(), brokers, async (admin) => {
        for (;;) {
          const metadata = await admin.fetchTopicMetadata({ topics });
          if (metadata.topics.every((t) => t.partitions.every((p) => p.isr.length >= replicas))) return;
          if (Date.now() > deadline) throw new Error(`${topics.join(', ')} not fully in sync in time`);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      });
    },
    async createTopic(name, partitions) {
      await withAdmin(kafka(), brokers, async (admin) => {
        await admin.createTopics({
          waitForLeaders: false,
          topics: [{ topic: name, numPartitions: partitions, replicationFactor: size }],
        });
        await waitForTopicLeaders(admin, [name], 60_000);
      });
    },
    async stop() {
      await Promise.all(handle.nodes.map((n) => stopProcess(n.pid, 10_000)));
    },
  };
  return cluster;
}
