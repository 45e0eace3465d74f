// Summarises V8 CPU profiles (from BENCH_CPU_PROF=DIR npm run bench, or node --cpu-prof):
// `node bench/cpu-top.mjs FILE.cpuprofile… [--top N]` prints the share of samples spent in each
// function (self time), per module (a package in node_modules, a file of dist/, node internals), and
// the total time under each of syncctl's own functions (dist/, counted once per sample even when
// recursive), which shows which stage step the library and native time belongs to.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' } },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error('usage: node bench/cpu-top.mjs FILE.cpuprofile… [--top N]');
  process.exit(2);
}
const top = Number(values.top);

function moduleOf(url, functionName) {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/(dist\/.*|bin\/.*)$/.exec(url);
  return own ? own[1] : url;
}

function table(counts, total) {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, n]) => `${((100 * n) / total).toFixed(1).padStart(6)} %  ${name}`)
    .join('\n');
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byFunction = new Map();
  const byModule = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const nameOf = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where =
      url === '' ? '' : ` ${url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}`;
    return `${functionName || '(anonymous)'}${where}`;
  };
  const inclusive = new Map();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    const fn = nameOf(node);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
    const mod = moduleOf(node.callFrame.url, node.callFrame.functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + hits);
    const onStack = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id);
      if (/\/dist\/(src|fixtures)\//.test(frame.callFrame.url)) onStack.add(nameOf(frame));
    }
    for (const f of onStack) inclusive.set(f, (inclusive.get(f) ?? 0) + hits);
  }
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  console.log(`\n${file}: ${seconds.toFixed(1)} s, ${total} samples`);
  console.log(`-- by module (self time)\n${table(byModule, total)}`);
  console.log(`-- by function (self time)\n${table(byFunction, total)}`);
  console.log(`-- syncctl's own functions (total time, callees included)\n${table(inclusive, total)}`);
}
