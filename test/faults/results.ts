/**
 * Turns the scenarios' FaultReports into bench/results/faults.md and faults.json (or into
 * FAULTS_RESULTS_DIR): the figures an operator reads to trust "nothing lost, nothing twice".
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { FaultReport } from './report.js';

export function readReports(file: string): FaultReport[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FaultReport);
}

function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

function cell(value: Record<string, number | string> | undefined): string {
  const entries = Object.entries(value ?? {});
  return entries.length === 0 ? '—' : entries.map(([k, v]) => `${k}: ${v}`).join(', ');
}

export function writeFaultResults(
  reports: FaultReport[],
  options: { dir: string; scale: string; seconds: number },
): { md: string; json: string } {
  mkdirSync(options.dir, { recursive: true });
  const clean = reports.every((r) => r.missing === 0 && r.storedTwice === 0);
  const summary = {
    generatedAt: new Date().toISOString(),
    scale: options.scale,
    machine: machine(),
    seconds: options.seconds,
    clean,
    scenarios: reports,
  };
  const json = join(options.dir, 'faults.json');
  writeFileSync(json, `${JSON.stringify(summary, null, 2)}\n`);

  const lines = [
    '# Fault suite',
    '',
    `\`npm run test:faults\`, scale \`${options.scale}\`, ${summary.generatedAt}, ${Math.round(options.seconds)} s.`,
    `Machine: ${summary.machine}.`,
    '',
    `Every scenario compares Analytics with an independent join of the fixtures' source data. Verdict: **${clean ? 'nothing missing, nothing stored twice' : 'FAILED — see the rows below'}**.`,
    '',
    '| scenario | fault and load | expected | delivered | missing | stored twice | dead-lettered | seconds | details |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |',
    ...reports.map(
      (r) =>
        `| ${r.scenario} | ${r.description} | ${r.expected} | ${r.delivered} | ${r.missing} | ${r.storedTwice} | ${cell(r.deadLettered)} | ${r.seconds.toFixed(1)} | ${cell(r.details)} |`,
    ),
    '',
  ];
  const md = join(options.dir, 'faults.md');
  writeFileSync(md, lines.join('\n'));
  return { md, json };
}
