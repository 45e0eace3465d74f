/**
 * The first SIGINT/SIGTERM asks a stage to stop cleanly (through the returned AbortSignal); the
 * handlers are removed at once, so a second signal ends the process with Node's default behaviour.
 */
export function stopOnSignals(onFirst: (signal: NodeJS.Signals) => void): {
  signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  const dispose = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  const handler = (signal: NodeJS.Signals) => {
    onFirst(signal);
    controller.abort();
    dispose();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { signal: controller.signal, dispose };
}
