import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { createKafka, parseBrokers, withAdmin } from '../connectors/kafka.js';
import { flagOf, GLOBAL_SETTINGS } from '../settings/index.js';
import { defaultCacheDir, ensureDir, PACKAGE_ROOT } from '../paths.js';

/** Keep in step with kafka/pom.xml. */
export const KAFKA_VERSION = '4.1.1';

export function kafkaLibDir(): string {
  return process.env.SYNCCTL_KAFKA_LIBS ?? join(defaultCacheDir(), `kafka-${KAFKA_VERSION}`, 'libs');
}

function classpath(): string {
  return `${kafkaLibDir()}/*`;
}

export function kafkaInstalled(): boolean {
  const dir = kafkaLibDir();
  return existsSync(join(dir, '.complete')) && readdirSync(dir).some((f) => f.startsWith('kafka_2.13-'));
}

/**
 * Resolves the broker jars from Maven Central into the cache (once). Maven is the one tool here that
 * speaks the repository protocol, and its local repository makes a re-install offline and fast.
 */
export function installKafka(log: (line: string) => void = () => {}): string {
  const dir = kafkaLibDir();
  if (kafkaInstalled()) return dir;
  ensureDir(dir, `the Kafka jar cache (SYNCCTL_CACHE_DIR)`);
  log(`resolving Apache Kafka ${KAFKA_VERSION} from Maven Central into ${dir}`);
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-Dstyle.color=never',
      '-f',
      join(PACKAGE_ROOT, 'kafka', 'pom.xml'),
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${dir}`,
    ],
    // stdout carries command results (e.g. `sandbox up --json`): Maven's chatter goes to stderr.
    { stdio: ['ignore', process.stderr, process.stderr] },
  );
  if (result.error || result.status !== 0) {
    throw new SandboxError(`could not resolve Apache Kafka ${KAFKA_VERSION} with Maven`, {
      cause: result.error,
      hint: `install Java 17+ and Maven, or point ${flagOf(GLOBAL_SETTINGS, 'brokers')} at an existing Kafka`,
    });
  }
  writeFileSync(join(dir, '.complete'), `${KAFKA_VERSION}\n`);
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

export interface BrokerHandle {
  pid: number;
  brokers: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  logFile: string;
}

/** One KRaft node of a cluster: where it listens and keeps its files, enough to start it again. */
export interface KafkaNode {
  id: number;
  pid: number;
  port: number;
  controllerPort: number;
  /** Its config, data and logs; the sandbox directory itself for a single broker. */
  dir: string;
  logFile: string;
}

export interface ClusterHandle {
  /** Every node's address, comma-separated: what clients bootstrap from. */
  brokers: string;
  nodes: KafkaNode[];
  /** What topics created here default to: one copy per broker. */
  replicationFactor: number;
  minInsyncReplicas: number;
}

export const MAX_CLUSTER_BROKERS = 5;

const LOG4J = `status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = \${sys:kafka.logs.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
`;

/** Two copies must acknowledge a write once there are three: one broker may die without losing a record. */
export function minInsyncReplicasFor(brokers: number): number {
  return brokers >= 3 ? 2 : 1;
}

interface NodeConfig {
  id: number;
  port: number;
  controllerPort: number;
  logDir: string;
  /** Every node's id and controller port (one entry for a single broker). */
  voters: { id: number; controllerPort: number }[];
}

function serverProperties(node: NodeConfig): string {
  const size = node.voters.length;
  // A single broker keeps the dynamic quorum it has always had (formatted --standalone); a cluster
  // names its voters statically, so every node is formatted alike without a running controller.
  const quorum =
    size === 1
      ? `controller.quorum.bootstrap.servers=127.0.0.1:${node.controllerPort}`
      : `controller.quorum.voters=${node.voters.map((v) => `${v.id}@127.0.0.1:${v.controllerPort}`).join(',')}`;
  const internalMinIsr = Math.min(2, size);
  const lines = [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    quorum,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${node.logDir}`,
    'num.partitions=1',
    `default.replication.factor=${size}`,
    `min.insync.replicas=${minInsyncReplicasFor(size)}`,
    `offsets.topic.replication.factor=${size}`,
    'offsets.topic.num.partitions=4',
    `transaction.state.log.replication.factor=${size}`,
    `transaction.state.log.min.isr=${internalMinIsr}`,
    `share.coordinator.state.topic.replication.factor=${size}`,
    `share.coordinator.state.topic.min.isr=${internalMinIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'log.segment.bytes=67108864',
  ];
  if (size > 1) {
    // A killed broker is fenced (and its partitions get new leaders) after 3 s instead of 9 s, inside
    // the clients' retry budget, so a publish rides out the failover instead of failing.
    lines.push('broker.heartbeat.interval.ms=500', 'broker.session.timeout.ms=3000');
  }
  return [...lines, ''].join('\n');
}

/** A Kafka cluster id (Uuid.randomUuid's form) without starting a JVM to ask for one. */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Kafka refuses ids that start with '-' (they read as options on a command line).
    if (!id.startsWith('-')) return id;
  }
}

function runJava(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (err) => resolve({ code: -1, output: err.message }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

function nodeFiles(dir: string) {
  return {
    props: join(dir, 'server.properties'),
    log4j: join(dir, 'log4j2.properties'),
    logFile: join(dir, 'kafka.log'),
    stdout: join(dir, 'kafka.stdout'),
    dataDir: join(dir, 'kafka-data'),
  };
}

function jvmLogArgs(dir: string): string[] {
  const files = nodeFiles(dir);
  return [`-Dlog4j2.configurationFile=${files.log4j}`, `-Dkafka.logs.file=${files.logFile}`];
}

/** Writes a node's config and, on first use, formats its storage for the cluster. */
async function prepareNode(
  dir: string,
  node: NodeConfig,
  clusterId: string,
  options: Pick<StartClusterOptions, 'extraProperties' | 'formatArgs'>,
): Promise<void> {
  const files = nodeFiles(dir);
  ensureDir(files.dataDir, 'the Kafka data directory');
  const extra = options.extraProperties?.({ port: node.port, controllerPort: node.controllerPort }) ?? [];
  writeFileSync(files.props, serverProperties(node) + extra.map((l) => `${l}\n`).join(''));
  writeFileSync(files.log4j, LOG4J);
  if (existsSync(join(files.dataDir, 'meta.properties'))) return;
  const standalone = node.voters.length === 1 ? ['--standalone'] : [];
  const format = await runJava([
    ...jvmLogArgs(dir),
    '-cp',
    classpath(),
    'kafka.tools.StorageTool',
    'format',
    ...standalone,
    '-t',
    clusterId,
    '-c',
    files.props,
    ...(options.formatArgs ?? []),
  ]);
  if (format.code !== 0) throw new SandboxError(`formatting Kafka storage failed: ${format.output}`.trim());
}

/** Starts (or starts again) one node as a detached JVM that outlives this process. */
export function spawnNode(dir: string, heap = '512m'): number {
  const files = nodeFiles(dir);
  const out = openSync(files.stdout, 'a');
  const child = spawn(
    'java',
    [
      `-Xmx${heap}`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      ...jvmLogArgs(dir),
      '-cp',
      classpath(),
      'kafka.Kafka',
      files.props,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new SandboxError('could not start java: is Java 17+ installed?');
  return child.pid;
}

/** Resolves once the node's client port answers; fails as soon as its JVM is gone. */
export async function waitForNode(node: KafkaNode, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (!isAlive(node.pid)) {
      throw new SandboxError(`Kafka broker ${node.id} exited during start-up; see ${node.logFile}`, {
        details: { log: tail(nodeFiles(node.dir).stdout) },
      });
    }
    if (await tcpAnswers('127.0.0.1', node.port)) return;
    await sleep(200);
  }
  throw new SandboxError(
    `Kafka broker ${node.id} did not answer on 127.0.0.1:${node.port} in time; see ${node.logFile}`,
  );
}

export interface StartClusterOptions {
  /** A directory of its own: a single broker keeps its files here, a cluster one kafka-<id> per node. */
  dir: string;
  /** Brokers (each also a KRaft controller), 1 to MAX_CLUSTER_BROKERS. */
  brokers?: number;
  /** The first broker's port; the others take free ones. */
  port?: number;
  heap?: string;
  readyTimeoutMs?: number;
  /** Lines appended to each node's server.properties (a later key wins): extra listeners, e.g. secure-kafka.ts. */
  extraProperties?: (ports: { port: number; controllerPort: number }) => string[];
  /** Extra arguments of `StorageTool format`, e.g. `--add-scram` users. */
  formatArgs?: string[];
}

/** Where node `id` of a cluster of `size` keeps its files. */
export function nodeDir(dir: string, id: number, size: number): string {
  return size === 1 ? dir : join(dir, `kafka-${id}`);
}

/**
 * Starts a KRaft cluster of combined broker+controller nodes on 127.0.0.1, all formatted with one
 * cluster id and voting in one controller quorum. Resolves once every node answers (and, for more
 * than one, once every broker has registered with the quorum, so topics with one copy per broker
 * can be created at once); `stopProcess` on each node's pid ends it.
 */
export async function startCluster(options: StartClusterOptions): Promise<ClusterHandle> {
  const size = options.brokers ?? 1;
  if (!Number.isInteger(size) || size < 1 || size > MAX_CLUSTER_BROKERS)
    throw new SandboxError(`a sandbox cluster has 1 to ${MAX_CLUSTER_BROKERS} brokers, not ${size}`);
  installKafka((line) => process.stderr.write(`syncctl: ${line}\n`));
  const ports: { id: number; port: number; controllerPort: number }[] = [];
  for (let id = 1; id <= size; id++) {
    const port = id === 1 && options.port !== undefined ? options.port : await freePort();
    ports.push({ id, port, controllerPort: await freePort() });
  }
  const voters = ports.map(({ id, controllerPort }) => ({ id, controllerPort }));
  const clusterId = randomClusterId();
  // Formatting starts a JVM per node: side by side, so three brokers cost about what one does.
  await Promise.all(
    ports.map((p) => {
      const dir = nodeDir(options.dir, p.id, size);
      return prepareNode(dir, { ...p, logDir: nodeFiles(dir).dataDir, voters }, clusterId, options);
    }),
  );
  const nodes: KafkaNode[] = [];
  const handle: ClusterHandle = {
    brokers: ports.map((p) => `127.0.0.1:${p.port}`).join(','),
    nodes,
    replicationFactor: size,
    minInsyncReplicas: minInsyncReplicasFor(size),
  };
  try {
    for (const p of ports) {
      const dir = nodeDir(options.dir, p.id, size);
      nodes.push({ ...p, dir, logFile: nodeFiles(dir).logFile, pid: spawnNode(dir, options.heap) });
    }
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000 * size);
    await Promise.all(nodes.map((node) => waitForNode(node, deadline)));
    if (size > 1) await waitForRegistration(handle, deadline);
  } catch (err) {
    await Promise.all(nodes.map((node) => stopProcess(node.pid)));
    throw err;
  }
  return handle;
}

/**
 * A listening port is not yet a member of the cluster: a broker counts once the controller quorum
 * has registered and unfenced it, which is what placing a replica on it needs.
 */
export async function waitForRegistration(cluster: ClusterHandle, deadline: number): Promise<void> {
  const brokers = parseBrokers(cluster.brokers);
  const kafka = createKafka({ brokers, clientId: 'syncctl-sandbox' });
  let registered = 0;
  while (Date.now() < deadline) {
    try {
      registered = await withAdmin(
        kafka,
        brokers,
        async (admin) => (await admin.describeCluster()).brokers.length,
      );
      if (registered >= cluster.nodes.length) return;
    } catch {
      // A quorum still electing its leader answers with errors for a moment.
    }
    await sleep(250);
  }
  throw new SandboxError(
    `only ${registered} of ${cluster.nodes.length} Kafka brokers joined the cluster in time; see ${cluster.nodes.map((n) => n.logFile).join(', ')}`,
  );
}

export interface StartBrokerOptions {
  /** A directory of its own: storage, config and log go here. */
  dir: string;
  port?: number;
  heap?: string;
  readyTimeoutMs?: number;
  /** Lines appended to server.properties (a later key wins): extra listeners, e.g. secure-kafka.ts. */
  extraProperties?: (ports: { port: number; controllerPort: number }) => string[];
  /** Extra arguments of `StorageTool format`, e.g. `--add-scram` users. */
  formatArgs?: string[];
}

/**
 * Starts a single-node KRaft broker+controller as a detached JVM that outlives this process
 * (the sandbox's `up` returns while the broker keeps running); `stopBroker` ends it.
 */
export async function startBroker(options: StartBrokerOptions): Promise<BrokerHandle> {
  const cluster = await startCluster({ ...options, brokers: 1 });
  const node = cluster.nodes[0]!;
  return {
    pid: node.pid,
    brokers: cluster.brokers,
    port: node.port,
    controllerPort: node.controllerPort,
    dataDir: nodeFiles(node.dir).dataDir,
    logFile: node.logFile,
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGTERM for a clean controlled shutdown, SIGKILL if it does not finish in time. */
export async function stopProcess(pid: number, graceMs = 20_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  while (isAlive(pid)) await sleep(50);
}

export const stopBroker = stopProcess;
