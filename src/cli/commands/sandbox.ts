import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import {
  defaultSandboxDir,
  sandboxDown,
  sandboxEnv,
  sandboxStatus,
  sandboxUp,
} from '../../sandbox/sandbox.js';
import { action, parseIntFlag } from '../context.js';

interface SandboxFlags {
  dir?: string;
  port?: number;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

export default function register(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('a local Kafka broker plus the fixture CRM, Inventory and Analytics systems')
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl sandbox up\n  $ eval "$(syncctl sandbox env)"\n  $ syncctl sandbox down',
    );
  const dirOption = (c: Command) =>
    c.option('--dir <path>', 'sandbox directory (default: $SYNCCTL_SANDBOX_DIR or <state dir>/sandbox)');

  dirOption(
    sandbox
      .command('up')
      .description('start the sandbox in the background (idempotent) and print its addresses')
      .option('--port <n>', 'Kafka port (default: a free one)', parseIntFlag('--port', 1))
      .addHelpText('after', '\nExamples:\n  $ syncctl sandbox up\n  $ syncctl sandbox up --json'),
  ).action(
    action<SandboxFlags>(async (ctx, opts) => {
      ctx.logger.info('starting the sandbox (Kafka broker and fixture systems)…');
      const { state, alreadyRunning } = await sandboxUp(
        opts.dir ?? defaultSandboxDir(),
        opts.port !== undefined ? { port: opts.port } : {},
      );
      const data: Record<string, unknown> = { kafka: state.kafka.brokers, dir: state.dir, alreadyRunning };
      for (const [name, s] of Object.entries(state.services)) data[name] = s.url;
      const lines = [`${alreadyRunning ? 'already running' : 'started'}: kafka ${state.kafka.brokers}`];
      for (const [name, s] of Object.entries(state.services)) lines.push(`  ${name}: ${s.url}`);
      lines.push('point commands at it with: eval "$(syncctl sandbox env)"');
      return { data, text: lines.join('\n') };
    }),
  );

  dirOption(
    sandbox
      .command('status')
      .description('show whether the sandbox is running (exit 1 when it is not)')
      .addHelpText('after', '\nExamples:\n  $ syncctl sandbox status\n  $ syncctl sandbox status --json'),
  ).action(
    action<SandboxFlags>(async (_ctx, opts) => {
      const status = sandboxStatus(opts.dir ?? defaultSandboxDir());
      const lines = [status.running ? 'running' : 'not running'];
      if (status.kafka)
        lines.push(`  kafka: ${status.kafka.brokers} (${status.kafka.alive ? 'up' : 'down'})`);
      for (const [name, s] of Object.entries(status.services))
        lines.push(`  ${name}: ${s.url} (${s.alive ? 'up' : 'down'})`);
      return {
        data: status,
        text: lines.join('\n'),
        exitCode: status.running ? ExitCode.Ok : ExitCode.Failure,
      };
    }),
  );

  dirOption(
    sandbox
      .command('env')
      .description('print export lines for the running sandbox')
      .addHelpText('after', '\nExample:\n  $ eval "$(syncctl sandbox env)"'),
  ).action(
    action<SandboxFlags>(async (_ctx, opts) => {
      const env = sandboxEnv(opts.dir ?? defaultSandboxDir());
      const text = Object.entries(env)
        .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
        .join('\n');
      return { data: env, text };
    }),
  );

  dirOption(
    sandbox
      .command('down')
      .description('stop the sandbox and every process it started')
      .addHelpText('after', '\nExample:\n  $ syncctl sandbox down'),
  ).action(
    action<SandboxFlags>(async (_ctx, opts) => {
      const result = await sandboxDown(opts.dir ?? defaultSandboxDir());
      return {
        data: result,
        text: result.stopped.length > 0 ? `stopped: ${result.stopped.join(', ')}` : 'nothing was running',
      };
    }),
  );
}
