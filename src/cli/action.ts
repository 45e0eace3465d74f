import type { Command } from 'commander';
import type { ActionOptions, CliContext, CommandResult } from './context.js';

/**
 * A command's commander action. Registering commands must stay cheap (`syncctl --help`, completion
 * and every small command pay for it), so the context — logger, profiles, Kafka and state helpers —
 * is loaded only when the command runs; command bodies import their stages the same way.
 */
export function action<O>(
  body: (ctx: CliContext, opts: O, command: Command) => Promise<CommandResult>,
  options: ActionOptions = {},
) {
  return async (...args: unknown[]): Promise<void> => {
    const context = await import('./context.js');
    await context.action(body, options)(...args);
  };
}
