import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { resolveSettings, SANDBOX_SETTINGS } from '../../settings/index.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

const profileOptional = { profileOptional: true };
// The sandbox module brings the Kafka client along: loaded when a sandbox command runs, not for --help.
const sandboxModule = () => import('../../sandbox/sandbox.js');
const dirOf = async (dir: string | undefined): Promise<string> =>
  dir ?? (await sandboxModule()).defaultSandboxDir();

/**
 * `sandbox up --brokers 3`: the program's -b/--brokers (a bootstrap list) takes the flag before
 * `up` sees it, and `up` makes its own brokers, so a plain number given there is read as how many.
 * An address list keeps being ignored, as it always was by `up`.
 */
function brokerCountFlag(command: Command): string | undefined {
  let root = command;
  while (root.parent) root = root.parent;
  const value: unknown = root.getOptionValue('brokers');
  if (root.getOptionValueSource('brokers') !== 'cli' || typeof value !== 'string') return undefined;
  return /^\s*\d+\s*$/.test(value) ? value.trim() : undefined;
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
  const dirOption = (c: Command) => addSettingOptions(c, SANDBOX_SETTINGS, ['dir']);

  addSettingOptions(
    sandbox
      .command('up')
      .description('start the sandbox in the background (idempotent) and print its addresses')
      .addHelpText(
        'after',
        '\nExamples:\n  $ syncctl sandbox up\n  $ syncctl sandbox up --json\n  $ syncctl sandbox up --brokers 3   # a 3-broker KRaft cluster: replication 3, min.insync.replicas=2\n  $ syncctl sandbox up --secure      # Kafka over SASL_SSL',
      ),
    SANDBOX_SETTINGS,
  ).action(
    action(async (ctx, _opts, command) => {
      const count = brokerCountFlag(command);
      const { dir, port, brokerCount, secure } = resolveSettings(SANDBOX_SETTINGS, ctx.settings, {
        ...command.opts(),
        ...(count !== undefined ? { brokerCount: count } : {}),
      });
      ctx.logger.info(
        brokerCount === 1
          ? 'starting the sandbox (Kafka broker and fixture systems)…'
          : `starting the sandbox (${brokerCount} Kafka brokers and fixture systems)…`,
      );
      const { state, alreadyRunning } = await (
        await sandboxModule()
      ).sandboxUp(await dirOf(dir), {
        brokers: brokerCount,
        ...(port !== undefined ? { port } : {}),
        secure,
      });
      const tls = state.kafka.secure;
      const data: Record<string, unknown> = { kafka: state.kafka.brokers, dir: state.dir, alreadyRunning };
      if (tls) data.kafkaListeners = { SASL_SSL: tls.saslSsl, SSL: tls.mtls, PLAINTEXT: tls.plaintext };
      const nodes = (await sandboxModule()).sandboxNodes(state);
      if (nodes.length > 1) {
        data.replicationFactor = state.kafka.replicationFactor;
        data.minInsyncReplicas = state.kafka.minInsyncReplicas;
      }
      for (const [name, s] of Object.entries(state.services)) data[name] = s.url;
      const lines = [
        `${alreadyRunning ? 'already running' : 'started'}: kafka ${state.kafka.brokers}${tls ? ' (SASL_SSL)' : ''}`,
      ];
      if (tls) lines.push(`  kafka mTLS: ${tls.mtls} (client certificate ${tls.clientCertFile})`);
      if (nodes.length > 1)
        lines.push(
          `  ${nodes.length} brokers: replication factor ${state.kafka.replicationFactor}, min.insync.replicas=${state.kafka.minInsyncReplicas}`,
        );
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
    action(async (ctx) => {
      const status = (await sandboxModule()).sandboxStatus(await dirOf(ctx.resolve(SANDBOX_SETTINGS).dir));
      const lines = [status.running ? 'running' : 'not running'];
      if (status.kafka && status.kafka.nodes.length === 1)
        lines.push(`  kafka: ${status.kafka.brokers} (${status.kafka.alive ? 'up' : 'down'})`);
      else if (status.kafka) {
        const { nodes, replicationFactor, minInsyncReplicas } = status.kafka;
        const up = nodes.filter((n) => n.alive).length;
        lines.push(
          `  kafka: ${up} of ${nodes.length} brokers up (replication factor ${replicationFactor}, min.insync.replicas=${minInsyncReplicas})`,
        );
        for (const n of nodes)
          lines.push(`    broker ${n.id}: ${n.broker} pid ${n.pid} (${n.alive ? 'up' : 'down'})`);
      }
      for (const [name, s] of Object.entries(status.services))
        lines.push(`  ${name}: ${s.url} (${s.alive ? 'up' : 'down'})`);
      return {
        data: status,
        text: lines.join('\n'),
        exitCode: status.running ? ExitCode.Ok : ExitCode.Failure,
      };
    }, profileOptional),
  );

  dirOption(
    sandbox
      .command('env')
      .description('print export lines for the running sandbox')
      .addHelpText('after', '\nExample:\n  $ eval "$(syncctl sandbox env)"'),
  ).action(
    action(async (ctx) => {
      const env = (await sandboxModule()).sandboxEnv(await dirOf(ctx.resolve(SANDBOX_SETTINGS).dir));
      const text = Object.entries(env)
        .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
        .join('\n');
      return { data: env, text, verbatim: true };
    }, profileOptional),
  );

  dirOption(
    sandbox
      .command('down')
      .description('stop the sandbox and every process it started')
      .addHelpText('after', '\nExample:\n  $ syncctl sandbox down'),
  ).action(
    action(async (ctx) => {
      const result = await (
        await sandboxModule()
      ).sandboxDown(await dirOf(ctx.resolve(SANDBOX_SETTINGS).dir));
      return {
        data: result,
        text: result.stopped.length > 0 ? `stopped: ${result.stopped.join(', ')}` : 'nothing was running',
      };
    }, profileOptional),
  );
}
