import { Command, CommanderError } from 'commander';
import { ExitCode, toSyncError, UsageError, type SyncError } from '../errors.js';
import { COMMANDS } from './commands/index.js';
import { activeLogger, setActiveLogger } from '../log.js';
import { redact } from '../redact.js';
import { GLOBAL_SETTINGS, KAFKA_SETTINGS } from '../settings/index.js';
import { addSettingOptions } from './options.js';
import { jsonOutput, resetOutput, stdoutUsed } from './output.js';
import { packageVersion } from './version.js';

const EXIT_CODE_HELP = `
Exit codes:
  0   ok
  1   failure
  2   usage or configuration error
  3   finished, but some records were rejected or dead-lettered
  4   another run holds the lock
  75  temporary failure (broker, source or PostgreSQL state store unreachable): retry later

Every flag can also be set as a SYNCCTL_<FLAG> environment variable or in a config profile
(flags > environment > profile > defaults).`;

export function buildProgram(): Command {
  const program = new Command('syncctl')
    .description('Sync customers (CRM, REST) and products (Inventory, SOAP) through Kafka into Analytics.')
    .version(packageVersion(), '-V, --version')
    .option('--profile <name>', 'config profile to read settings from (SYNCCTL_PROFILE)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODE_HELP)
    .exitOverride();
  addSettingOptions(program, GLOBAL_SETTINGS);
  addSettingOptions(program, KAFKA_SETTINGS);
  for (const register of COMMANDS) register(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

function describe(err: SyncError, verbose: boolean): string {
  const lines = [`syncctl: error: ${redact(err.message)}`];
  if (err.hint) lines.push(`syncctl: hint: ${redact(err.hint)}`);
  if (verbose && err.stack) lines.push(redact(err.stack));
  return lines.join('\n') + '\n';
}

/** --json as the command would have resolved it, for failures before it got that far. */
function wantsJson(argv: string[]): boolean {
  const known = jsonOutput();
  if (known !== undefined) return known;
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  if (args.includes('--json') || args.includes('--output=json') || args.includes('-ojson')) return true;
  if (args.some((a, i) => (a === '-o' || a === '--output') && args[i + 1] === 'json')) return true;
  return /^(1|true|yes|on)$/i.test(process.env.SYNCCTL_JSON ?? '');
}

/** The one JSON document a failing command leaves on stdout under --json (unless it printed one). */
function errorDocument(err: SyncError): string {
  const error = {
    code: err.code,
    message: redact(err.message),
    exitCode: err.exitCode,
    ...(err.hint ? { hint: redact(err.hint) } : {}),
  };
  return `${JSON.stringify({ error }, null, 2)}\n`;
}

/** Parses argv, runs one command and returns its exit code; never exits by itself. */
export async function runCli(argv: string[]): Promise<number> {
  resetOutput();
  setActiveLogger(undefined);
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
    let syncError: SyncError;
    if (err instanceof CommanderError) {
      // Commander has already printed the message (or the help) on stderr.
      const asked = ['commander.helpDisplayed', 'commander.help', 'commander.version'];
      if (asked.includes(err.code) && err.exitCode === 0) return ExitCode.Ok;
      // No command at all: the help went to stderr and exits 2, so a cron typo does not look like success.
      const message =
        err.code === 'commander.help' ? 'no command given' : err.message.replace(/^error: /, '');
      syncError = new UsageError(message);
    } else {
      syncError = toSyncError(err);
      const verbose = argv.includes('-v') || argv.includes('--verbose');
      const logger = activeLogger();
      if (logger) {
        // Through the command's logger: one JSON line under --log-format json, and into --log-file.
        logger.error(syncError.message, {
          code: syncError.code,
          exitCode: syncError.exitCode,
          ...(syncError.hint ? { hint: syncError.hint } : {}),
        });
        if (logger.format === 'human')
          process.stderr.write(describe(syncError, verbose).replace(/^.*\n/, ''));
      } else {
        process.stderr.write(describe(syncError, verbose));
      }
    }
    if (wantsJson(argv) && !stdoutUsed()) process.stdout.write(errorDocument(syncError));
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
