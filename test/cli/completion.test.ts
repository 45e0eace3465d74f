import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** What bash offers after typing `line` (the last word being completed), using the generated script. */
function bashComplete(script: string, line: string): string[] {
  const file = join(tempDir('syncctl-completion-'), 'syncctl.bash');
  writeFileSync(file, script);
  const words = line.split(' ');
  const program = [
    `source ${file}`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    '_syncctl',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  return execFileSync('bash', ['-c', program], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('syncctl completion', () => {
  it('bash: completes commands, subcommands, flags and setting choices from the command tree', async () => {
    const run = await runSyncctl(['completion', 'bash']);
    expect(run.code).toBe(0);
    const script = run.stdout;
    expect(bashComplete(script, 'syncctl ')).toEqual(
      expect.arrayContaining(['fetch', 'publish', 'consume', 'topics', 'doctor', 'completion']),
    );
    expect(bashComplete(script, 'syncctl to')).toEqual(['topics']);
    expect(bashComplete(script, 'syncctl topics ')).toEqual(expect.arrayContaining(['ensure', 'describe']));
    expect(bashComplete(script, 'syncctl fetch --sou')).toEqual(['--source']);
    expect(bashComplete(script, 'syncctl fetch --source ')).toEqual(['crm', 'inventory']);
    expect(bashComplete(script, 'syncctl -o ')).toEqual(['table', 'plain', 'json']);
    // A flag's value is not taken for a command: "-b host fetch --crm-p" still completes fetch's flags.
    expect(bashComplete(script, 'syncctl -b localhost:9092 fetch --crm-pag').sort()).toEqual([
      '--crm-page-param',
      '--crm-page-size',
      '--crm-page-size-param',
      '--crm-pagination',
    ]);
  });

  it('zsh and fish scripts name every command; an unknown shell is a usage error', async () => {
    const zsh = await runSyncctl(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef syncctl/);
    const fish = await runSyncctl(['completion', 'fish']);
    expect(fish.code).toBe(0);
    for (const command of ['fetch', 'consume', 'doctor']) {
      expect(zsh.stdout).toContain(`'${command}:`);
      expect(fish.stdout).toContain(`-a '${command}'`);
    }
    expect(fish.stdout).toContain("-l source -x -a 'crm inventory'");
    const bad = await runSyncctl(['completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown shell "tcsh"/);
  });
});
