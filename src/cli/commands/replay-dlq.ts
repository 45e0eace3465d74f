import type { Command } from 'commander';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  REPLAY_DLQ_SETTINGS,
  TOPIC_SETTINGS,
} from '../../settings/index.js';
import { addSettingOptions } from '../options.js';

const EXAMPLES = `
Reading never commits anything: a private, throw-away consumer group reads the dead-letter topic
to the end offsets seen at start. Letters are named by their dead-letter partition and offset.

Examples:
  $ syncctl replay-dlq                                   # every letter, as a table
  $ syncctl replay-dlq --count                           # how many per error class
  $ syncctl replay-dlq --error-class InvalidEnvelopeError --since 2026-12-01 --json > letters.ndjson
  $ syncctl replay-dlq --show 42 --partition 0           # one letter whole: headers and value
  $ syncctl replay-dlq --replay --error-class SinkPermanentError --dry-run   # what would happen, and where
  $ syncctl replay-dlq --replay --error-class SinkPermanentError --deliver   # re-mark and deliver now
  $ syncctl replay-dlq --replay --from-file letters.ndjson                   # corrected values
  $ syncctl replay-dlq --replay --edit --source-topic customer_data          # correct them in $EDITOR

Replay: invalid messages go back to their source topic with their key, headers and value (or the
corrected one) plus syncctl-replay-count; a message the consume stage would still refuse goes back
to the dead-letter topic with its attempts raised instead. Records Analytics refused are marked for
delivery again in the state store (--deliver delivers them now, else the next consume does).
Letters whose value was truncated are refused unless --from-file gives the value. Each letter is
replayed once: progress lives in the state store, so the same command run twice replays nothing.

--from-file: NDJSON, one object per letter to replay: {"partition": 0, "offset": "12", "value": …}
where value is the corrected message (a JSON object, or the text itself as a string) — the --json
listing, edited. Only the letters it names are replayed.

Exit codes: 0 everything selected replayed (or replayed before); 3 some failed again or were
refused; 75 Kafka, Analytics or the state store unavailable (rerun: nothing is replayed twice).`;

export default function register(program: Command): void {
  const command = program
    .command('replay-dlq')
    .description('list, count, show and replay dead-lettered messages and records');
  addSettingOptions(command, REPLAY_DLQ_SETTINGS);
  addSettingOptions(command, TOPIC_SETTINGS);
  addSettingOptions(command, CONSUME_SETTINGS, ['group', 'batchSize', 'productRefPath']);
  addSettingOptions(command, ANALYTICS_SETTINGS);
  command.addHelpText('after', EXAMPLES).action(async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command & { exitCodeResult?: number };
    // The body (Kafka, the state store, Analytics, tables) is loaded only when the command runs.
    const [{ contextFrom }, { run }] = await Promise.all([
      import('../context.js'),
      import('./replay-dlq-run.js'),
    ]);
    const ctx = contextFrom(cmd);
    cmd.exitCodeResult = await run(ctx, cmd);
  });
}
