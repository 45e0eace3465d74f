import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
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

function serverProperties(port: number, controllerPort: number, logDir: string): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'log.segment.bytes=67108864',
    '',
  ].join('\n');
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
  installKafka((line) => process.stderr.write(`syncctl: ${line}\n`));
  const port = options.port ?? (await freePort());
  const controllerPort = await freePort();
  const dataDir = join(options.dir, 'kafka-data');
  ensureDir(dataDir, 'the Kafka data directory');
  const propsFile = join(options.dir, 'server.properties');
  const log4jFile = join(options.dir, 'log4j2.properties');
  const logFile = join(options.dir, 'kafka.log');
  const extra = options.extraProperties?.({ port, controllerPort }) ?? [];
  writeFileSync(
    propsFile,
    serverProperties(port, controllerPort, dataDir) + extra.map((l) => `${l}\n`).join(''),
  );
  writeFileSync(log4jFile, LOG4J);
  const jvmLog = [`-Dlog4j2.configurationFile=${log4jFile}`, `-Dkafka.logs.file=${logFile}`];

  if (!existsSync(join(dataDir, 'meta.properties'))) {
    const clusterId = spawnSync('java', ['-cp', classpath(), 'kafka.tools.StorageTool', 'random-uuid'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('\n')
      .pop();
    const format = spawnSync(
      'java',
      [
        ...jvmLog,
        '-cp',
        classpath(),
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        clusterId ?? '',
        '-c',
        propsFile,
        ...(options.formatArgs ?? []),
      ],
      { encoding: 'utf8' },
    );
    if (format.status !== 0) {
      throw new SandboxError(`formatting Kafka storage failed: ${format.stderr || format.stdout}`.trim());
    }
  }

  const out = openSync(join(options.dir, 'kafka.stdout'), 'a');
  const child = spawn(
    'java',
    [
      `-Xmx${options.heap ?? '512m'}`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      ...jvmLog,
      '-cp',
      classpath(),
      'kafka.Kafka',
      propsFile,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new SandboxError('could not start java: is Java 17+ installed?');
  const handle: BrokerHandle = { pid, brokers: `127.0.0.1:${port}`, port, controllerPort, dataDir, logFile };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      throw new SandboxError(`the Kafka broker exited during start-up; see ${logFile}`, {
        details: { log: tail(join(options.dir, 'kafka.stdout')) },
      });
    }
    if (await tcpAnswers('127.0.0.1', port)) return handle;
    await sleep(200);
  }
  await stopBroker(pid);
  throw new SandboxError(`the Kafka broker did not answer on ${handle.brokers} in time; see ${logFile}`);
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
