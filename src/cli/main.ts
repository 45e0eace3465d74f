import { Command, CommanderError, Option } from 'commander';
import { ExitCode, toSyncError, type SyncError } from '../errors.js';
import { COMMANDS } from './commands/index.js';
import { redact } from '../redact.js';
import { parseIntFlag } from './context.js';

const EXIT_CODE_HELP = `
Exit codes:
  0   ok
  1   failure
  2   usage or configuration error
  3   finished, but some records were rejected or dead-lettered
  4   another run holds the lock
  75  temporary failure (broker or source unreachable): retry later

Every flag can also be set as a SYNCCTL_<FLAG> environment variable or in a config profile
(flags > environment > profile > defaults).`;

export function buildProgram(): Command {
  const program = new Command('syncctl')
    .description('Sync customers (CRM, REST) and products (Inventory, SOAP) through Kafka into Analytics.')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .option('-b, --brokers <list>', 'Kafka bootstrap brokers, comma-separated (default 127.0.0.1:9092)')
    .option('--json', 'print results as JSON on stdout')
    .option('-q, --quiet', 'print only errors')
    .option('-v, --verbose', 'print debug diagnostics on stderr')
    .option('--profile <name>', 'config profile to read settings from')
    .addOption(new Option('--state <path>', 'state store: SQLite file path or postgres:// URL'))
    .option(
      '--connect-timeout <ms>',
      'how long connecting to Kafka may take before it counts as unreachable (default 5000)',
      parseIntFlag('--connect-timeout', 1),
    )
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODE_HELP)
    .exitOverride();
  for (const register of COMMANDS) register(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

function describe(err: SyncError, verbose: boolean): string {
  const lines = [`syncctl: error: ${redact(err.message)}`];
  if (err.hint) lines.push(`syncctl: hint: ${err.hint}`);
  if (verbose && err.stack) lines.push(redact(err.stack));
  return lines.join('\n') + '\n';
}

/** Parses argv, runs one command and returns its exit code; never exits by itself. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  let exitCode: number = ExitCode.Ok;
  program.hook('postAction', (_thisCommand, actionCommand) => {
    const code = (actionCommand as Command & { exitCodeResult?: number }).exitCodeResult;
    if (code !== undefined) exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help asked for, or shown because no command was given, is not an error.
      const helpOrVersion = ['commander.helpDisplayed', 'commander.help', 'commander.version'];
      return helpOrVersion.includes(err.code) ? ExitCode.Ok : ExitCode.Usage;
    }
    const syncError = toSyncError(err);
    const verbose = argv.includes('-v') || argv.includes('--verbose');
    process.stderr.write(describe(syncError, verbose));
    return syncError.exitCode;
  }
}

async function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0) return;
  await new Promise<void>((resolve) => stream.write('', () => resolve()));
}

/** The one place that calls process.exit: open sockets and timers must not keep a cron job alive. */
export async function main(): Promise<void> {
  const code = await runCli(process.argv);
  await flush(process.stdout);
  await flush(process.stderr);
  process.exit(code);
}
