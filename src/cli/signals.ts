/**
 * The first SIGINT/SIGTERM asks a stage to stop cleanly (through the returned AbortSignal); a second
 * one ends the process at once, with the default disposition of that signal (exit by signal).
 *
 * Two dependencies make this harder than it looks:
 * - when-exit (conf → atomically) listens to every signal and, on the first one, sends the same
 *   signal to the process again. That echo is not a second Ctrl-C: it is counted while the first
 *   signal is being handled (our listener runs first) and then ignored.
 * - signal-exit (ora hiding the cursor) re-raises a signal as soon as it finds itself the only
 *   listener, so ours stays installed until dispose() instead of being removed on the first signal.
 */
export function stopOnSignals(onFirst: (signal: NodeJS.Signals) => void): {
  signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  const echoes = new Map<NodeJS.Signals, number>();
  const dispose = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  const countEchoesOf = (signal: NodeJS.Signals) => {
    const kill = process.kill;
    process.kill = ((pid: number, sig?: string | number) => {
      if (pid === process.pid && sig === signal) echoes.set(signal, (echoes.get(signal) ?? 0) + 1);
      return kill.call(process, pid, sig);
    }) as typeof process.kill;
    // The other listeners of this signal run synchronously after ours, before the next tick.
    process.nextTick(() => {
      process.kill = kill;
    });
  };
  const handler = (signal: NodeJS.Signals) => {
    const pending = echoes.get(signal) ?? 0;
    if (pending > 0) {
      echoes.set(signal, pending - 1);
      return;
    }
    if (controller.signal.aborted) {
      dispose();
      process.kill(process.pid, signal);
      return;
    }
    countEchoesOf(signal);
    onFirst(signal);
    controller.abort();
  };
  process.prependListener('SIGINT', handler);
  process.prependListener('SIGTERM', handler);
  return { signal: controller.signal, dispose };
}
