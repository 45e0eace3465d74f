/**
 * Runs the built bin/syncctl on a real pseudo-terminal through script(1) from util-linux, so a
 * test can see what an operator sees (spinner, colours) and press Ctrl-C: the byte \x03 written to
 * the terminal, which the line discipline turns into SIGINT for the foreground process group.
 */
import { spawn } from 'node:child_process';
import { BIN, ROOT, type Child } from './cli.js';

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

export interface PtyChild extends Child {
  /** Everything the terminal showed (stdout and stderr of syncctl, interleaved, with \r\n). */
  output: () => string;
  /** Types on the terminal's keyboard. */
  type: (keys: string) => void;
  ctrlC: () => void;
}

export function startSyncctlOnPty(args: string[], env: Record<string, string | undefined>): PtyChild {
  const cleanEnv = Object.fromEntries(
    Object.entries({ TERM: 'xterm-256color', ...env }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  // A pty made by script(1) without a terminal of its own has 0×0 cells: give it a real size. `exec`
  // keeps syncctl the only process in the terminal's foreground group (a shell there would die of
  // the Ctrl-C and hang up the terminal under it).
  const command = `stty cols 120 rows 40 && exec ${[process.execPath, BIN, ...args].map(shellQuote).join(' ')}`;
  // -q quiet, -f flush at once, -e exit with the child's status, -c the command; no typescript file.
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: ROOT,
    env: cleanEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const type = (keys: string) => {
    if (child.stdin.writable) child.stdin.write(keys);
  };
  return {
    process: child,
    stdout: () => output,
    stderr: () => '',
    output: () => output,
    exited,
    type,
    ctrlC: () => type('\x03'),
  };
}
