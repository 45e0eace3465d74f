import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { action } from '../action.js';

interface ConfigFlags {
  profile?: string;
}

function profileOf(command: Command): string {
  return command.optsWithGlobals<ConfigFlags>().profile ?? process.env.SYNCCTL_PROFILE ?? 'default';
}

const editsProfiles = { editsProfiles: true };
const cwd = () => (process.env.SYNCCTL_CONFIG_DIR ? { cwd: process.env.SYNCCTL_CONFIG_DIR } : {});

export default function register(program: Command): void {
  const config = program
    .command('config')
    .description('named profiles of settings (any flag, e.g. brokers, crm-url, state)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl config set brokers kafka-1:9092,kafka-2:9092\n  $ syncctl --profile nightly config set state postgres://sync@db/sync\n  $ syncctl --profile nightly fetch --source crm --publish\n  $ syncctl config list --json',
    );

  config
    .command('set <name> <value>')
    .description('store a setting in the profile (--profile, default "default")')
    .addHelpText(
      'after',
      '\nExamples:\n  $ syncctl config set brokers kafka-1:9092\n  $ syncctl --profile nightly config set crm-url https://crm.example.com',
    )
    .action(
      action(async (_ctx, _opts, command) => {
        const [name, value] = command.args as [string, string];
        const { setProfileValue } = await import('../../stages/config.js');
        const result = setProfileValue(profileOf(command), name, value, cwd());
        return { data: result, text: `${result.profile}: ${result.key} set (${result.path})` };
      }, editsProfiles),
    );

  config
    .command('get <name>')
    .description('print a setting of the profile (exit 1 when it is not set)')
    .addHelpText('after', '\nExample:\n  $ syncctl --profile nightly config get crm-url')
    .action(
      action(async (_ctx, _opts, command) => {
        const { getProfileValue } = await import('../../stages/config.js');
        const result = getProfileValue(profileOf(command), command.args[0] as string, cwd());
        return {
          data: result,
          text: result.value === undefined ? '' : String(result.value),
          exitCode: result.value === undefined ? ExitCode.Failure : ExitCode.Ok,
          verbatim: true,
        };
      }),
    );

  config
    .command('unset <name>')
    .description('remove a setting from the profile')
    .addHelpText('after', '\nExample:\n  $ syncctl config unset brokers')
    .action(
      action(async (_ctx, _opts, command) => {
        const { unsetProfileValue } = await import('../../stages/config.js');
        const result = unsetProfileValue(profileOf(command), command.args[0] as string, cwd());
        return {
          data: result,
          text: result.removed ? `${result.profile}: ${result.key} removed` : 'nothing to remove',
        };
      }, editsProfiles),
    );

  config
    .command('list')
    .description('show every profile, secrets masked')
    .addHelpText('after', '\nExamples:\n  $ syncctl config list\n  $ syncctl config list --json')
    .action(
      action(async () => {
        const { listProfiles } = await import('../../stages/config.js');
        const listing = listProfiles(cwd());
        const lines = [`# ${listing.path}`];
        for (const [name, values] of Object.entries(listing.profiles)) {
          lines.push(`[${name}]`);
          for (const [k, v] of Object.entries(values)) lines.push(`  ${k} = ${String(v)}`);
        }
        return { data: listing, text: lines.join('\n') };
      }, editsProfiles),
    );
}
