import { redact } from '../redact.js';
/**
 * What this process put on stdout. With --json a caller parses stdout as one JSON document, so a
 * failure prints its `{"error": …}` object only if nothing was written there yet; a result printed
 * before the failure (fetch's summary) carries the error itself.
 */
let used = false;
let json: boolean | undefined;

/** Results are redacted; `verbatim` is for data the operator asked for (`sandbox env`, `config get`). */
export function writeStdout(text: string, verbatim = false): void {
  used = true;
  const safe = verbatim ? text : redact(text);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}

/** For data written to stdout by other means (fetch's NDJSON): stdout then belongs to the data. */
export function claimStdout(): void {
  used = true;
}

export function stdoutUsed(): boolean {
  return used;
}

/** Whether the command resolved --json (flag, SYNCCTL_JSON or profile); undefined before it did. */
export function setJsonOutput(value: boolean): void {
  json = value;
}

export function jsonOutput(): boolean | undefined {
  return json;
}

/** For code that runs several commands in one process (tests). */
export function resetOutput(): void {
  used = false;
  json = undefined;
}
