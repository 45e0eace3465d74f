import type { Command } from 'commander';
import registerSandbox from './sandbox.js';
import registerTopics from './topics.js';
import registerPublish from './publish.js';
import registerFetch from './fetch.js';
import registerConfig from './config.js';
import registerConsume from './consume.js';
import registerReplayDlq from './replay-dlq.js';
import registerDoctor from './doctor.js';
import registerCompletion from './completion.js';
import registerExportCsv from './export-csv.js';
import registerRun from './run.js';
import registerStatus from './status.js';
import registerProbe from './probe.js';

/** One entry per command file; the order is the order of `syncctl --help`. */
export const COMMANDS: ((program: Command) => void)[] = [
  registerSandbox,
  registerTopics,
  registerFetch,
  registerProbe,
  registerPublish,
  registerConsume,
  registerReplayDlq,
  registerExportCsv,
  registerRun,
  registerStatus,
  registerDoctor,
  registerConfig,
  registerCompletion,
];
