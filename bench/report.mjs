// Summarises the bench rows: median of the repetitions with min/max per case and size, each syncctl
// figure as a ratio of the baselines measured in the same run (per repetition, so a busy minute
// slows both sides), and bench/results/latest.md + latest.json with the machine and its load.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

/** syncctl case ÷ baseline case, both counted in records (or messages) per second. */
export const RATIOS = [
  ['publish', 'kafkajs-producer'],
  ['publish', 'kafkajs-producer-h'],
  ['publish', 'kcat-P'],
  ['consume', 'kafkajs-consumer-2t'],
  ['consume', 'kcat-C-2t'],
  ['consume-pg', 'kafkajs-consumer-2t'],
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** One row per case and size: per-second median/min/max over the repetitions, peak RSS max. */
export function aggregate(rows) {
  const groups = new Map();
  for (const r of rows) {
    const k = `${r.case}\u0000${r.size}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
  }
  return [...groups.values()].map((rs) => ({
    case: rs[0].case,
    size: rs[0].size,
    runs: rs.length,
    perSecond: spread(rs.map((r) => r.perSecond)),
    seconds: median(rs.map((r) => r.seconds)),
    peakRssMb: Math.max(...rs.map((r) => r.peakRssMb)),
    cpuPct: median(rs.map((r) => r.cpuPct)),
    otherCpuPct: median(rs.map((r) => r.otherCpuPct)),
  }));
}

/** Ratio per repetition (same rep number, same size), then median/min/max of those ratios. */
export function ratios(rows) {
  const out = [];
  for (const [subject, baseline] of RATIOS) {
    for (const size of [...new Set(rows.map((r) => r.size))]) {
      const per = [];
      const perCpu = [];
      for (const s of rows.filter((r) => r.case === subject && r.size === size)) {
        const b = rows.find((r) => r.case === baseline && r.size === size && r.rep === s.rep);
        if (!b) continue;
        per.push(s.perSecond / b.perSecond);
        // Records per CPU-second: steadier than wall time when the machine is oversubscribed.
        if (s.cpuSeconds > 0 && b.cpuSeconds > 0) perCpu.push(b.cpuSeconds / s.cpuSeconds);
      }
      if (per.length > 0) {
        const round = (x) => Number(x.toFixed(3));
        const { median: m, min, max } = spread(per);
        const cpu = perCpu.length > 0 ? round(median(perCpu)) : null;
        out.push({
          subject,
          baseline,
          size,
          ratio: { median: round(m), min: round(min), max: round(max) },
          cpuRatio: cpu,
        });
      }
    }
  }
  return out;
}

export function machine() {
  const c = cpus();
  return {
    cpu: `${c.length} × ${c[0]?.model ?? 'unknown'}`,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export function markdown(report) {
  const fmt = ({ median: m, min, max }) => `${Math.round(m)} (${Math.round(min)}–${Math.round(max)})`;
  const lines = [
    `# npm run bench — ${report.date}`,
    '',
    `Machine: ${report.machine.cpu}, ${report.machine.memoryGb} GiB, Node ${report.machine.node}; ` +
      `load average at start ${report.loadAtStart.join(' / ')}, at end ${report.machine.loadAverage.join(' / ')}. ` +
      `Sizes ${report.sizes.join(', ')}, ${report.repeat} repetition(s) each: median (min–max).`,
    '',
    '| case | size | runs | per second | seconds (median) | peak RSS MB | CPU % | other CPU % |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...report.cases.map(
      (c) =>
        `| ${c.case} | ${c.size} | ${c.runs} | ${fmt(c.perSecond)} | ${c.seconds.toFixed(2)} | ${c.peakRssMb} | ${c.cpuPct} | ${c.otherCpuPct} |`,
    ),
    '',
    'Records (messages) per second of each syncctl run ÷ the baseline of the same repetition; "by CPU time" ' +
      'is baseline CPU-seconds ÷ syncctl CPU-seconds (median), which a busy machine skews less. ' +
      'kafkajs-producer-h is the raw producer setting the five headers syncctl sets.',
    '',
    '| syncctl ÷ baseline (same repetition) | size | median | min | max | by CPU time |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...report.ratios.map(
      (r) =>
        `| ${r.subject} ÷ ${r.baseline} | ${r.size} | ${r.ratio.median} | ${r.ratio.min} | ${r.ratio.max} | ${r.cpuRatio ?? ''} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

/** Writes DIR/latest.json and DIR/latest.md (DIR = BENCH_RESULTS, default bench/results). */
export function writeResults(dir, { rows, sizes, repeat, loadAtStart, warnings, error }) {
  const report = {
    date: new Date().toISOString(),
    machine: machine(),
    loadAtStart,
    sizes,
    repeat,
    cases: aggregate(rows),
    ratios: ratios(rows),
    warnings,
    ...(error ? { error } : {}),
    rows,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'latest.md'), markdown(report));
  return report;
}
