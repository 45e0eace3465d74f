import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  CRM_SETTINGS,
  DOCTOR_SETTINGS,
  INVENTORY_SETTINGS,
  TOPIC_SETTINGS,
} from '../../settings/index.js';
import type { CheckResult, DoctorOptions } from '../../stages/doctor.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { addSettingOptions } from '../options.js';

const EXAMPLES = `
Checks, each bounded in time and read-only: the config profile is valid and its file not readable by
others, the state store opens, the broker answers, the topics exist with leaders, the consumer
group's state, the CRM answers one page with the token, the WSDL loads and its operation answers one
page, Analytics answers GET /v1/health with the token. Sources not configured are skipped.
Exit code: 0 when nothing failed (warnings allowed), 1 when a check failed.

Examples:
  $ syncctl doctor
  $ syncctl --profile prod doctor --json | jq '.checks[] | select(.status == "fail")'`;

const MARK: Record<CheckResult['status'], string> = { pass: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

function describe(ctx: CliContext, checks: CheckResult[]): string {
  const table = ctx.table(
    ['check', 'result', 'time', 'detail'],
    checks.map((c) => [c.name, MARK[c.status], `${c.ms} ms`, c.hint ? `${c.detail}\n→ ${c.hint}` : c.detail]),
  );
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  const verdict =
    failed > 0
      ? `${failed} check(s) failed`
      : warned > 0
        ? `all checks passed, ${warned} warning(s)`
        : 'all checks passed';
  return `${table}\n${verdict}`;
}

export default function register(program: Command): void {
  const command = program
    .command('doctor')
    .description('check the broker, topics, state store, CRM, Inventory, Analytics and config before a run');
  addSettingOptions(command, TOPIC_SETTINGS);
  addSettingOptions(command, CONSUME_SETTINGS, ['group']);
  addSettingOptions(command, CRM_SETTINGS);
  addSettingOptions(command, INVENTORY_SETTINGS);
  addSettingOptions(command, ANALYTICS_SETTINGS);
  addSettingOptions(command, DOCTOR_SETTINGS)
    .addHelpText('after', EXAMPLES)
    .action(
      action<Record<string, never>>(
        async (ctx, _opts, cmd) => {
          const { createKafka } = await import('../../connectors/kafka.js');
          const { describeKafkaSecurity } = await import('../../connectors/kafka-security.js');
          const { doctor } = await import('../../stages/doctor.js');
          const { checkTimeout } = ctx.resolve(DOCTOR_SETTINGS);
          let kafka: DoctorOptions['kafka'] = null;
          let brokersError: string | undefined;
          let brokersHint: string | undefined;
          try {
            const options = ctx.kafkaOptions();
            kafka = {
              client: createKafka(options),
              brokers: options.brokers,
              // PLAINTEXT, the default, goes unsaid as it always has.
              ...(options.security && options.security.protocol !== 'PLAINTEXT'
                ? { security: describeKafkaSecurity(options.security) }
                : {}),
            };
          } catch (err) {
            brokersError = (err as Error).message;
            brokersHint = (err as { hint?: string }).hint;
          }
          const result = await doctor({
            settings: ctx.settings,
            flags: cmd.opts(),
            kafka,
            ...(brokersError !== undefined ? { brokersError } : {}),
            ...(brokersHint !== undefined ? { brokersHint } : {}),
            statePath: ctx.statePath(),
            checkTimeoutMs: checkTimeout * 1000,
            logger: ctx.logger,
          });
          return {
            data: result,
            text: describe(ctx, result.checks),
            exitCode: result.ok ? ExitCode.Ok : ExitCode.Failure,
          };
        },
        { profileOptional: true },
      ),
    );
}
