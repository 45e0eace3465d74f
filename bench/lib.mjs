// Helpers of `npm run bench`: run bin/syncctl and the fixture systems as processes, sample their
// memory and CPU from /proc, and read back what landed. Everything started here is registered so
// that one cleanup() (also on SIGINT/SIGTERM) stops it.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'syncctl');
const serveJs = join(root, 'dist', 'fixtures', 'serve.js');
const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const closers = new Set();
let stopping = false;

/**
 * Registers an async stop function; returns a function that runs it once and unregisters it.
 * Once cleanup() has begun (an interrupt), whatever starts is stopped at once.
 */
export function track(stop) {
  let done;
  const run = () => {
    closers.delete(run);
    done ??= Promise.resolve().then(stop);
    return done;
  };
  closers.add(run);
  if (stopping) void run().catch(() => {});
  return run;
}

/** Stops everything still registered, newest first; never throws. */
export async function cleanup() {
  stopping = true;
  for (const stop of [...closers].reverse()) {
    try {
      await stop();
    } catch (err) {
      process.stderr.write(`bench: cleanup: ${err.message}\n`);
    }
  }
}

// finally blocks do not run when the bench itself is interrupted: stop the children here instead.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping everything it started\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** CPU seconds (user + system) a process has used so far, or undefined once it is gone. */
export function cpuSeconds(pid) {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}

async function stopPid(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = once(child, 'close');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await closed;
  clearTimeout(timer);
}

function tail(text, max = 4000) {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/**
 * Runs bin/syncctl with the given arguments, sampling the child's peak RSS (VmHWM) and CPU time
 * from /proc while it runs. BENCH_CPU_PROF=DIR writes a V8 CPU profile per run under DIR/<label>.
 */
export async function measure(args, env, label) {
  const nodeArgs = [];
  if (process.env.BENCH_CPU_PROF) {
    const dir = join(process.env.BENCH_CPU_PROF, label);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  return measureCommand(process.execPath, [...nodeArgs, bin, ...args], env);
}

/**
 * Runs any command (a baseline: kcat, a raw kafkajs script) the way measure() runs syncctl.
 * With `countLines` stdout is not kept, only its newlines counted (kcat -C prints every message).
 */
export async function measureCommand(command, argv, env, { countLines = false } = {}) {
  const started = process.hrtime.bigint();
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const untrack = track(() => stopPid(child));
  let stdout = '';
  let lines = 0;
  let stderr = '';
  child.stdout.on('data', (d) => {
    if (!countLines) stdout += d;
    else for (let i = d.indexOf(0x0a); i !== -1; i = d.indexOf(0x0a, i + 1)) lines++;
  });
  child.stderr.on('data', (d) => (stderr = tail(stderr + d, 20000)));
  let peakKb = 0;
  let cpu = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      /* exited between samples */
    }
    cpu = cpuSeconds(child.pid) ?? cpu;
  };
  const timer = setInterval(sample, 50);
  const [code] = await once(child, 'close');
  clearInterval(timer);
  await untrack();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let summary;
  try {
    summary = countLines ? { lines } : JSON.parse(stdout);
  } catch {
    summary = undefined;
  }
  return { code, seconds, cpu, peakMb: Math.round(peakKb / 1024), stdout, stderr: tail(stderr), summary };
}

/** Like measure(), but throws with the command's stderr unless it exited 0 with a JSON summary. */
export async function syncctl(args, env, label) {
  const run = await measure(['--json', ...args], env, label);
  if (run.code !== 0 || run.summary === undefined) {
    throw new Error(
      `syncctl ${args.join(' ')} exited ${run.code}\nstdout: ${tail(run.stdout)}\nstderr: ${run.stderr}`,
    );
  }
  return run;
}

/** Starts `node dist/fixtures/serve.js <kind> ...args` and waits for its `{"url": …}` line. */
export async function startFixture(kind, args) {
  const child = spawn(process.execPath, [serveJs, kind, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = track(() => stopPid(child));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = tail(stderr + d)));
  const lines = createInterface({ input: child.stdout });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    for await (const line of lines) {
      const { url } = JSON.parse(line);
      return { url, pid: child.pid, stop };
    }
    throw new Error(`fixture ${kind} exited before listening: ${stderr}`);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timeout);
  }
}

export async function getJson(url, token) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Messages per topic, from `syncctl topics describe --json` (sum of high - low over partitions). */
export async function topicMessages(topics, env) {
  const run = await syncctl(['topics', 'describe', ...topics], env, 'describe');
  return Object.fromEntries(run.summary.topics.map((t) => [t.name, t.messages]));
}

/** Lines and distinct envelope `id`s of an NDJSON envelope file, streamed. */
export async function ndjsonStats(file) {
  const ids = new Set();
  let lines = 0;
  for await (const line of createInterface({ input: createReadStream(file) })) {
    if (line === '') continue;
    lines++;
    ids.add(JSON.parse(line).id);
  }
  return { lines, ids: ids.size };
}

/** A private PostgreSQL schema for one case; the URL pins search_path to it. */
export async function pgSchema(baseUrl, name) {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    await client.query(`CREATE SCHEMA ${name}`);
  } finally {
    await client.end();
  }
  const drop = track(async () => {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    } finally {
      await c.end();
    }
  });
  const sep = baseUrl.includes('?') ? '&' : '?';
  return { url: `${baseUrl}${sep}options=-csearch_path%3D${name}`, drop };
}

/** Throws when a count that must match does not. */
export function expectEqual(what, actual, expected) {
  if (actual !== expected) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}
