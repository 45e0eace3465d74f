import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  LIMIT_SETTINGS,
  TOPIC_SETTINGS,
} from '../../settings/index.js';
import type { ConsumeSummary } from '../../stages/consume.js';
import type { HeldLock } from '../../state/locks.js';
import { action } from '../action.js';
import { addSettingOptions } from '../options.js';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function describeSummary(s: ConsumeSummary): string {
  const lines = [
    `${s.status === 'failed' ? 'stopped on an error after consuming' : 'consumed'} ${s.consumed} message(s) from ${s.topics.customers}, ${s.topics.products} (group ${s.group}) in ${seconds(s.durationMs)}`,
    `merged ${s.merged}, unchanged ${s.unchanged}, stale ${s.stale} (older versions ignored), tombstones ${s.tombstones}`,
    `delivered ${s.delivered} unified record(s) in ${s.sinkBatches} batch(es), skipped ${s.skippedDuplicate} as duplicate, retries ${s.retries}`,
    `dead-lettered ${s.deadLettered} (${s.deadLetteredMessages} invalid message(s), ${s.deadLetteredRecords} refused by Analytics)${s.deadLettered > 0 ? ` → ${s.topics.deadLetter}` : ''}`,
    `lag left ${s.lagLeft === null ? 'unknown' : s.lagLeft.total}, pending deliveries ${s.pendingDeliveries ?? 'unknown'}${s.finishedBy === 'idle-timeout' ? ' (gave up: no progress before the end offsets)' : ''}`,
  ];
  return lines.join('\n');
}

export default function register(program: Command): void {
  const command = program
    .command('consume')
    .description(
      'consume customer_data and inventory_data, merge, dedupe and deliver unified records to Analytics',
    );
  addSettingOptions(command, CONSUME_SETTINGS);
  addSettingOptions(command, LIMIT_SETTINGS, ['maxRecordBytes']);
  addSettingOptions(command, TOPIC_SETTINGS);
  addSettingOptions(command, ANALYTICS_SETTINGS)
    .addHelpText(
      'after',
      `
State (merge tables, delivery outbox and ledger) lives in the state store: --state / SYNCCTL_STATE,
a SQLite file by default or a postgres:// URL so several instances can share one group.
Unified records: docs/unified-record.md, schemas/unified-record.schema.json.
Delivery is deferred by up to --max-delivery-delay (sooner once 20 × --batch-size customers wait,
at the end of --once, on a stop); offsets are committed only after that delivery. --once reads
the product topic before the customer topic.

Exit codes: 0 all delivered; 3 finished, some records dead-lettered; 75 Analytics or Kafka
unavailable (rerun later: nothing is lost or stored twice); 1 other failures; 2 usage/config.

Examples:
  $ syncctl consume --once
  $ syncctl consume --once --json --group nightly
  $ SYNCCTL_STATE=postgres://sync@db/sync syncctl consume      # run until SIGTERM`,
    )
    .action(
      action(async (ctx, _opts, cmd) => {
        const { consume } = await import('../../stages/consume.js');
        const { openConsume } = await import('../../stages/wiring.js');
        const { acquireLock } = await import('../../state/locks.js');
        const { stopOnSignals } = await import('../signals.js');
        const { startProgress } = await import('../spinner.js');
        const parts = await openConsume({
          kafka: ctx.kafkaOptions(),
          settings: ctx.settings,
          flags: cmd.opts(),
          logger: ctx.logger,
          statePath: ctx.statePath(),
        });
        let lock: HeldLock | undefined;
        try {
          // Several long-running consumers may share a group; two --once drains of it would race.
          if (parts.options.once) {
            lock = await acquireLock(parts.db, `consume:${parts.options.group}`, {
              runId: randomUUID(),
              logger: parts.logger,
            });
          }
        } catch (err) {
          await parts.close();
          throw err;
        }
        const stop = stopOnSignals((signal) =>
          ctx.logger.warn(
            `${signal}: finishing the batch in flight and delivering what was read, then stopping (again to quit at once)`,
          ),
        );
        const progress = startProgress(ctx.interactive, 'consuming…');
        let summary: ConsumeSummary;
        try {
          summary = await consume({
            ...parts.options,
            signal: stop.signal,
            onProgress: (p) =>
              progress.update(
                `consumed ${p.consumed}, delivered ${p.delivered}${p.deadLettered > 0 ? `, dead-lettered ${p.deadLettered}` : ''}${p.lagLeft === null ? '' : `, lag left ${p.lagLeft}`}`,
                p.consumed,
              ),
          });
        } finally {
          progress.stop();
          stop.dispose();
          await lock?.release();
          await parts.close();
        }
        if (!summary.error && summary.deadLettered > 0) {
          ctx.logger.warn(`${summary.deadLettered} record(s) dead-lettered to ${summary.topics.deadLetter}`);
        }
        return {
          data: summary,
          text: describeSummary(summary),
          exitCode: summary.deadLettered > 0 ? ExitCode.Partial : ExitCode.Ok,
          ...(summary.error ? { error: summary.error } : {}),
        };
      }),
    );
}
