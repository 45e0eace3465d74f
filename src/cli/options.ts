import { Option, type Command } from 'commander';
import { flagSpec, helpText, type SettingGroup } from '../settings/index.js';

/**
 * Declares a group's settings as options of a command. Values are not parsed here: resolving
 * (settings/resolve.ts) checks flags, variables and profile values by the same rules.
 */
export function addSettingOptions(command: Command, group: SettingGroup, only?: readonly string[]): Command {
  for (const [key, def] of Object.entries(group)) {
    if (only && !only.includes(key)) continue;
    command.addOption(new Option(flagSpec(key, def), helpText(key, def)));
    // commander presets a --no-x switch to true; unset, so the environment and profile still count.
    if (def.type === 'boolean' && def.default === true) command.setOptionValue(key, undefined);
  }
  return command;
}
