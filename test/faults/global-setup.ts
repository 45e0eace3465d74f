import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import startTestBroker from '../global-setup.js';
import { ROOT } from '../helpers/cli.js';
import { FAULTS_RESULTS_ENV } from './report.js';
import { readReports, writeFaultResults } from './results.js';
import { faultScale } from './scale.js';

/** The normal suite's broker, plus a file the scenarios append their reports to (forks inherit the env). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'syncctl-faults-'));
  const file = join(dir, 'reports.ndjson');
  writeFileSync(file, '');
  process.env[FAULTS_RESULTS_ENV] = file;
  const stopBroker = await startTestBroker(project);
  return async () => {
    await stopBroker();
    const reports = readReports(file);
    if (reports.length > 0) {
      const out = writeFaultResults(reports, {
        dir: process.env.FAULTS_RESULTS_DIR || join(ROOT, 'bench', 'results'),
        scale: faultScale().name,
        seconds: (Date.now() - started) / 1000,
      });
      process.stdout.write(`fault suite report: ${out.md}\n`);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
