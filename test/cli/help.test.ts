import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { runSyncctl } from '../helpers/cli.js';

function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return [path, ...commandPaths(c, path)];
  });
}

describe('syncctl --help', () => {
  it('lists every command and the exit codes', async () => {
    const run = await runSyncctl(['--help']);
    expect(run.code).toBe(0);
    for (const name of ['sandbox', 'topics', 'publish', 'fetch', 'consume', 'config']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
    expect(run.stdout).toMatch(/75 +temporary failure/);
  });

  const paths = commandPaths(buildProgram());
  it.each(paths.map((p) => [p.join(' '), p]))(
    '%s --help shows its flags and an example',
    async (_name, path) => {
      const run = await runSyncctl([...(path as string[]), '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Usage: syncctl /m);
      expect(run.stdout).toMatch(/Examples?:\n(?: +#.*\n)? +\$ .*syncctl /);
    },
  );

  it('treats an unknown flag as a usage error (exit 2)', async () => {
    const run = await runSyncctl(['publish', '--topic', 't', '--no-such-flag']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown option '--no-such-flag'/);
  });
});
