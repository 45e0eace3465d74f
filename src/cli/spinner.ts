import ora, { type Ora } from 'ora';

/** https://no-color.org: any non-empty value turns colours off. */
export function colorDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.NO_COLOR ?? '') !== '';
}

/**
 * The progress spinner of fetch and consume, on stderr. Callers decide whether the run is
 * interactive at all (CliContext.interactive); this only decides how the spinner behaves there.
 * Returns undefined when the terminal cannot show one.
 */
export function startSpinner(text: string, stream: NodeJS.WriteStream = process.stderr): Ora | undefined {
  // A pseudo-terminal that reports 0 columns (script(1) without a terminal of its own, some
  // container runtimes) makes ora compute an infinite line count and spin in clear() forever.
  if (!stream.columns) return undefined;
  return ora({
    text,
    stream,
    // ora's default puts stdin in raw mode, so Ctrl-C no longer makes the terminal send SIGINT, and
    // its own replacement never fires because it does not resume a fresh stdin: Ctrl-C did nothing.
    discardStdin: false,
    // chalk (ora's colours) ignores NO_COLOR.
    color: colorDisabled() ? false : 'cyan',
  }).start();
}

/** A progress line for a stage's onProgress callback; does nothing when the run is not interactive. */
export interface ProgressLine {
  /** Redraws the line (at most every 100 ms); `rateOf` adds "N records/s" for that count. */
  update(text: string, rateOf?: number): void;
  stop(): void;
}

export function startProgress(interactive: boolean, text: string): ProgressLine {
  const spinner = interactive ? startSpinner(text) : undefined;
  if (!spinner) return { update: () => {}, stop: () => {} };
  const started = Date.now();
  let drawn = 0;
  return {
    update(line, rateOf) {
      const now = Date.now();
      // Stages report per record or page; redrawing for each would cost more than the work.
      if (now - drawn < 100) return;
      drawn = now;
      const seconds = (now - started) / 1000;
      spinner.text =
        rateOf === undefined || seconds < 0.5 ? line : `${line}, ${Math.round(rateOf / seconds)} records/s`;
    },
    stop: () => spinner.stop(),
  };
}
