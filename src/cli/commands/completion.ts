import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import { action } from '../action.js';

const EXAMPLES = `
Examples:
  $ source <(syncctl completion bash)                      # this shell; add it to ~/.bashrc to keep it
  $ syncctl completion zsh > "\${fpath[1]}/_syncctl"
  $ syncctl completion fish > ~/.config/fish/completions/syncctl.fish`;

export default function register(program: Command): void {
  program
    .command('completion')
    .description(`print a shell completion script (${SHELLS.join(', ')})`)
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText('after', EXAMPLES)
    .action(
      action<Record<string, never>>(async (_ctx, _opts, command) => {
        const shell = command.args[0] ?? '';
        if (!(SHELLS as readonly string[]).includes(shell)) {
          throw new UsageError(`completion: unknown shell "${shell}"`, {
            hint: `one of ${SHELLS.join(', ')}`,
          });
        }
        let root = command;
        while (root.parent) root = root.parent;
        // The script is data for the shell: printed as is, never as JSON.
        process.stdout.write(completionScript(root, shell as Shell));
        return { data: null, text: '' };
      }),
    );
}
