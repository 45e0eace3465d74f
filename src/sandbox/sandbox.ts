import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SandboxError, UsageError } from '../errors.js';
import { defaultStateDir, ensureDir, PACKAGE_ROOT } from '../paths.js';
import { envOf, TOPICS_ENSURE_SETTINGS } from '../settings/index.js';
import { isAlive, startCluster, stopProcess, tcpAnswers } from './kafka-broker.js';
import { secureKafkaEnv, startSecureBroker, type SecureKafka } from './secure-kafka.js';

/**
 * A fixture system the sandbox runs next to Kafka. `args` are passed to dist/fixtures/serve.js,
 * which prints one JSON line `{"url": ...}` on stdout once it listens.
 */
export interface SandboxServiceSpec {
  name: string;
  args: string[];
  /** SYNCCTL_* variables pointing commands at this service, from its URL. */
  env: (url: string) => Record<string, string>;
}

/** Credentials of the sandbox's stand-in systems: demo values, not secrets. */
export const SANDBOX_CRM_TOKEN = 'sandbox-crm-token';
export const SANDBOX_INVENTORY_USER = 'sandbox';
export const SANDBOX_INVENTORY_PASSWORD = 'sandbox-inventory-password';
export const SANDBOX_ANALYTICS_TOKEN = 'sandbox-analytics-token';

export const SANDBOX_SERVICES: SandboxServiceSpec[] = [
  {
    name: 'crm',
    args: ['crm', '--seed', '42', '--count', '1000', '--products', '200', '--token', SANDBOX_CRM_TOKEN],
    env: (url) => ({ SYNCCTL_CRM_URL: url, SYNCCTL_CRM_TOKEN: SANDBOX_CRM_TOKEN }),
  },
  {
    name: 'inventory',
    args: [
      'inventory',
      '--seed',
      '42',
      '--count',
      '200',
      '--user',
      SANDBOX_INVENTORY_USER,
      '--password',
      SANDBOX_INVENTORY_PASSWORD,
    ],
    env: (url) => ({
      SYNCCTL_INVENTORY_WSDL: `${url}?wsdl`,
      SYNCCTL_INVENTORY_USER: SANDBOX_INVENTORY_USER,
      SYNCCTL_INVENTORY_PASSWORD: SANDBOX_INVENTORY_PASSWORD,
    }),
  },
  {
    name: 'analytics',
    args: ['analytics', '--token', SANDBOX_ANALYTICS_TOKEN],
    env: (url) => ({ SYNCCTL_ANALYTICS_URL: url, SYNCCTL_ANALYTICS_TOKEN: SANDBOX_ANALYTICS_TOKEN }),
  },
];

export interface ServiceState {
  pid: number;
  url: string;
  env: Record<string, string>;
}

/** One broker of the sandbox's cluster. */
export interface SandboxNode {
  id: number;
  pid: number;
  /** host:port clients reach it at. */
  broker: string;
}

export interface SandboxState {
  dir: string;
  /**
   * `pid` is the first broker's (all a sandbox made before clusters existed has); `nodes`, when
   * present, lists every broker, and `brokers` every address.
   */
  kafka: {
    pid: number;
    brokers: string;
    nodes?: SandboxNode[];
    replicationFactor?: number;
    minInsyncReplicas?: number;
    secure?: SecureKafka;
  };
  services: Record<string, ServiceState>;
  startedAt: string;
}

export interface SandboxStatus {
  dir: string;
  running: boolean;
  kafka: {
    brokers: string;
    pid: number;
    alive: boolean;
    replicationFactor: number;
    minInsyncReplicas: number;
    nodes: (SandboxNode & { alive: boolean })[];
  } | null;
  services: Record<string, { url: string; pid: number; alive: boolean }>;
}

export function defaultSandboxDir(): string {
  return process.env.SYNCCTL_SANDBOX_DIR ?? join(defaultStateDir(), 'sandbox');
}

function stateFile(dir: string): string {
  return join(dir, 'sandbox.json');
}

/** Every broker of a sandbox, also of one written before clusters existed (a single `kafka.pid`). */
export function sandboxNodes(state: SandboxState): SandboxNode[] {
  return state.kafka.nodes ?? [{ id: 1, pid: state.kafka.pid, broker: state.kafka.brokers }];
}

export function readSandbox(dir = defaultSandboxDir()): SandboxState | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SandboxState;
  } catch {
    return undefined;
  }
}

async function startService(dir: string, spec: SandboxServiceSpec): Promise<ServiceState> {
  const script = join(PACKAGE_ROOT, 'dist', 'fixtures', 'serve.js');
  if (!existsSync(script))
    throw new SandboxError(`fixture servers are not built (${script}); run npm run build`);
  const outFile = join(dir, `${spec.name}.out`);
  const out = openSync(outFile, 'w');
  const child = spawn(process.execPath, [script, ...spec.args], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new SandboxError(`could not start the ${spec.name} fixture`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const text = readFileSync(outFile, 'utf8');
    const match = /^\{"url":"([^"]+)"/m.exec(text);
    if (match?.[1]) return { pid, url: match[1], env: spec.env(match[1]) };
    if (!isAlive(pid)) throw new SandboxError(`the ${spec.name} fixture exited: ${text.slice(-500)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stopProcess(pid, 2_000);
  throw new SandboxError(`the ${spec.name} fixture did not start in time`);
}

export interface SandboxUpResult {
  state: SandboxState;
  alreadyRunning: boolean;
}

/** Left in every sandbox directory, so a fresh start may empty it and nothing else. */
const MARKER = '.syncctl-sandbox';
/** What a sandbox writes (sandboxes made before the marker existed have only these). */
const SANDBOX_FILE =
  /^(sandbox\.json|kafka-data|kafka-\d+|server\.properties|log4j2\.properties|kafka\.(log|stdout)|[\w-]+\.out)$/;

/**
 * A fresh start empties the directory; one that holds anything but an earlier sandbox (`--dir .`,
 * `--dir ~`) is refused rather than wiped.
 */
function refuseForeignDir(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  if (entries.includes(MARKER) || entries.every((name) => SANDBOX_FILE.test(name))) return;
  throw new UsageError(
    `sandbox --dir ${dir} is not empty and is not a sandbox directory; refusing to delete its contents`,
    {
      hint: 'choose an empty or new directory for --dir (SYNCCTL_SANDBOX_DIR)',
    },
  );
}

/** Starts Kafka and the fixture systems in the background; a running sandbox is reused as is. */
export async function sandboxUp(
  dir = defaultSandboxDir(),
  options: { port?: number; brokers?: number; secure?: boolean } = {},
): Promise<SandboxUpResult> {
  const brokers = options.brokers ?? 1;
  if (options.secure && brokers > 1)
    throw new UsageError('sandbox up --secure runs a single broker; leave out --brokers or --secure');
  const existing = readSandbox(dir);
  const nodes = existing ? sandboxNodes(existing) : [];
  // A running sandbox of another size is replaced: `up --brokers 3` must give three brokers.
  if (
    existing &&
    nodes.length === brokers &&
    nodes.every((n) => isAlive(n.pid)) &&
    Boolean(existing.kafka.secure) === Boolean(options.secure)
  ) {
    const servicesAlive = Object.values(existing.services).every((s) => isAlive(s.pid));
    const wanted = SANDBOX_SERVICES.every((s) => existing.services[s.name] !== undefined);
    const answers = await Promise.all(
      nodes.map((n) => {
        const [host, port] = n.broker.split(':');
        return tcpAnswers(host ?? '127.0.0.1', Number(port));
      }),
    );
    if (servicesAlive && wanted && answers.every(Boolean)) {
      return { state: existing, alreadyRunning: true };
    }
  }
  if (existing) await sandboxDown(dir);
  const purpose = `sandbox --dir ${dir}`;
  // The parent first: with a file in the way, rmSync would fail with a bare ENOTDIR.
  ensureDir(dirname(dir), purpose);
  refuseForeignDir(dir);
  rmSync(dir, { recursive: true, force: true });
  ensureDir(dir, purpose);
  writeFileSync(join(dir, MARKER), 'A syncctl sandbox: `syncctl sandbox up` empties this directory.\n');
  const port = options.port !== undefined ? { port: options.port } : {};
  let kafka: SandboxState['kafka'];
  if (options.secure) {
    const broker = await startSecureBroker({ dir, ...port });
    kafka = { pid: broker.pid, brokers: broker.brokers, secure: broker.secure };
  } else {
    const cluster = await startCluster({ dir, brokers, ...port });
    kafka = {
      pid: cluster.nodes[0]!.pid,
      brokers: cluster.brokers,
      nodes: cluster.nodes.map((n) => ({ id: n.id, pid: n.pid, broker: `127.0.0.1:${n.port}` })),
      replicationFactor: cluster.replicationFactor,
      minInsyncReplicas: cluster.minInsyncReplicas,
    };
  }
  const state: SandboxState = {
    dir,
    kafka,
    services: {},
    startedAt: new Date().toISOString(),
  };
  writeFileSync(stateFile(dir), JSON.stringify(state, null, 2));
  try {
    for (const spec of SANDBOX_SERVICES) {
      state.services[spec.name] = await startService(dir, spec);
      writeFileSync(stateFile(dir), JSON.stringify(state, null, 2));
    }
  } catch (err) {
    await sandboxDown(dir);
    throw err;
  }
  return { state, alreadyRunning: false };
}

export function sandboxStatus(dir = defaultSandboxDir()): SandboxStatus {
  const state = readSandbox(dir);
  if (!state) return { dir, running: false, kafka: null, services: {} };
  const nodes = sandboxNodes(state).map((n) => ({ ...n, alive: isAlive(n.pid) }));
  const kafkaAlive = nodes.every((n) => n.alive);
  const services: SandboxStatus['services'] = {};
  for (const [name, s] of Object.entries(state.services)) {
    services[name] = { url: s.url, pid: s.pid, alive: isAlive(s.pid) };
  }
  return {
    dir,
    running: kafkaAlive && Object.values(services).every((s) => s.alive),
    kafka: {
      brokers: state.kafka.brokers,
      pid: state.kafka.pid,
      alive: kafkaAlive,
      replicationFactor: state.kafka.replicationFactor ?? 1,
      minInsyncReplicas: state.kafka.minInsyncReplicas ?? 1,
      nodes,
    },
    services,
  };
}

/** The `export SYNCCTL_…=…` lines that point every command at the running sandbox. */
export function sandboxEnv(dir = defaultSandboxDir()): Record<string, string> {
  const state = readSandbox(dir);
  if (!state || !sandboxNodes(state).some((n) => isAlive(n.pid))) {
    throw new SandboxError('no sandbox is running', { hint: 'start one with `syncctl sandbox up`' });
  }
  const env: Record<string, string> = { SYNCCTL_BROKERS: state.kafka.brokers, ...secureKafkaEnv(dir) };
  const replication = state.kafka.replicationFactor ?? 1;
  // `topics ensure` then makes one copy per broker; a single broker keeps the default (1).
  if (replication > 1) env[envOf(TOPICS_ENSURE_SETTINGS, 'replicationFactor')] = String(replication);
  for (const service of Object.values(state.services)) Object.assign(env, service.env);
  return env;
}

export interface SandboxDownResult {
  dir: string;
  stopped: string[];
}

export async function sandboxDown(dir = defaultSandboxDir()): Promise<SandboxDownResult> {
  const state = readSandbox(dir);
  const stopped: string[] = [];
  if (!state) return { dir, stopped };
  for (const [name, service] of Object.entries(state.services)) {
    if (isAlive(service.pid)) {
      await stopProcess(service.pid, 5_000);
      stopped.push(name);
    }
  }
  const running = sandboxNodes(state).filter((n) => isAlive(n.pid));
  await Promise.all(running.map((n) => stopProcess(n.pid)));
  if (running.length > 0) stopped.push('kafka');
  rmSync(stateFile(dir), { force: true });
  return { dir, stopped };
}
