import type { Kafka } from 'kafkajs';
import { toKafkaError, waitForTopicLeaders, withAdmin } from '../connectors/kafka.js';

export { DEFAULT_TOPICS } from '../settings/index.js';

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

export type TopicStatus = 'created' | 'exists' | 'conflict';

export interface TopicOutcome {
  name: string;
  status: TopicStatus;
  partitions: number;
  replicationFactor: number;
  /** Why an existing topic does not match what was asked for. */
  conflicts: string[];
}

export interface EnsureTopicsOptions {
  kafka: Kafka;
  brokers: string[];
  topics: TopicSpec[];
}

export interface EnsureTopicsResult {
  topics: TopicOutcome[];
  created: number;
  existing: number;
  conflicts: number;
}

/** Creates what is missing; compares what exists. Never alters an existing topic. */
export async function ensureTopics(options: EnsureTopicsOptions): Promise<EnsureTopicsResult> {
  return withAdmin(options.kafka, options.brokers, async (admin) => {
    try {
      const existing = new Set(await admin.listTopics());
      const missing = options.topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: false,
          topics: missing.map((t) => ({
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor: t.replicationFactor,
            configEntries: Object.entries(t.configs).map(([name, value]) => ({ name, value })),
          })),
        });
        await waitForTopicLeaders(
          admin,
          missing.map((t) => t.name),
        );
      }
      const present = options.topics.filter((t) => existing.has(t.name));
      const outcomes = new Map<string, TopicOutcome>();
      for (const t of missing) {
        outcomes.set(t.name, {
          name: t.name,
          status: 'created',
          partitions: t.partitions,
          replicationFactor: t.replicationFactor,
          conflicts: [],
        });
      }
      if (present.length > 0) {
        const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: present.map((t) => ({ type: 2 /* TOPIC */, name: t.name })),
        });
        for (const spec of present) {
          const meta = metadata.topics.find((m) => m.name === spec.name);
          const partitions = meta?.partitions.length ?? 0;
          const replicationFactor = meta?.partitions[0]?.replicas.length ?? 0;
          const conflicts: string[] = [];
          if (partitions !== spec.partitions) {
            conflicts.push(`has ${partitions} partitions, ${spec.partitions} wanted`);
          }
          if (replicationFactor !== spec.replicationFactor) {
            conflicts.push(`has replication factor ${replicationFactor}, ${spec.replicationFactor} wanted`);
          }
          const entries = described.resources.find((r) => r.resourceName === spec.name)?.configEntries ?? [];
          for (const [key, want] of Object.entries(spec.configs)) {
            const have = entries.find((e) => e.configName === key)?.configValue;
            if (have !== want) conflicts.push(`has ${key}=${have ?? '(unset)'}, ${want} wanted`);
          }
          outcomes.set(spec.name, {
            name: spec.name,
            status: conflicts.length > 0 ? 'conflict' : 'exists',
            partitions,
            replicationFactor,
            conflicts,
          });
        }
      }
      const topics = options.topics.map((t) => outcomes.get(t.name)!);
      return {
        topics,
        created: topics.filter((t) => t.status === 'created').length,
        existing: topics.filter((t) => t.status === 'exists').length,
        conflicts: topics.filter((t) => t.status === 'conflict').length,
      };
    } catch (err) {
      throw toKafkaError(err, options.brokers, 'ensuring topics');
    }
  });
}

export interface PartitionOffsets {
  partition: number;
  low: number;
  high: number;
  /** Messages currently retained in the partition (high − low). */
  messages: number;
}

export interface TopicOffsets {
  name: string;
  partitions: PartitionOffsets[];
  messages: number;
}

/** Per-partition low/high watermarks: what landed where. */
export async function describeTopics(options: {
  kafka: Kafka;
  brokers: string[];
  topics: string[];
}): Promise<TopicOffsets[]> {
  return withAdmin(options.kafka, options.brokers, async (admin) => {
    try {
      const existing = new Set(await admin.listTopics());
      const result: TopicOffsets[] = [];
      for (const name of options.topics.filter((t) => existing.has(t))) {
        const offsets = await admin.fetchTopicOffsets(name);
        const partitions = offsets
          .map((o) => ({
            partition: o.partition,
            low: Number(o.low),
            high: Number(o.high),
            messages: Number(o.high) - Number(o.low),
          }))
          .sort((a, b) => a.partition - b.partition);
        result.push({ name, partitions, messages: partitions.reduce((sum, p) => sum + p.messages, 0) });
      }
      return result;
    } catch (err) {
      throw toKafkaError(err, options.brokers, 'describing topics');
    }
  });
}
