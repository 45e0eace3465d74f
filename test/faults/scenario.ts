/**
 * A fault scenario's world: the fixture CRM and Inventory (with fault knobs), private topics, a
 * private state store and the Analytics fixture (consume-harness.ts), `bin/syncctl` run as the
 * subprocesses cron would run — killed with SIGKILL at seeded random points and rerun until a run
 * comes out clean — and at the end the oracle's verdict written as a FaultReport.
 */
import { expect } from 'vitest';
import type { AnalyticsFaults } from '../../fixtures/analytics/server.js';
import { startCrmServer, type CrmServer, type CrmServerOptions } from '../../fixtures/crm/server.js';
import { mulberry32 } from '../../fixtures/data/prng.js';
import {
  startInventoryServer,
  type InventoryServer,
  type InventoryServerOptions,
} from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl, startSyncctl, waitFor, type CliRun } from '../helpers/cli.js';
import {
  createHarness,
  type Harness,
  type HarnessKafka,
  type StateKind,
} from '../helpers/consume-harness.js';
import { readAll } from '../helpers/kafka.js';
import { expectedJoin, judge, type OracleVerdict } from './oracle.js';
import { recordFaultReport, type FaultReport } from './report.js';

export interface WorldOptions {
  /** Distinct secrets per scenario, so a leak is traced to it. */
  tag: string;
  seed: number;
  customers: number;
  products: number;
  crmFaults?: CrmServerOptions['faults'];
  inventoryFaults?: InventoryServerOptions['faults'];
  analyticsFaults?: AnalyticsFaults;
  inventoryPageSize?: number;
  /** Topics on this cluster instead of the shared test broker (kafka-cluster.ts). */
  kafka?: HarnessKafka;
  /** The state store: a private SQLite file (the default) or a private PostgreSQL schema. */
  state?: StateKind;
  /** A SQLite file of the scenario's own instead (e.g. on a small tmpfs). */
  stateFile?: string;
}

export interface KillRecord {
  /** What the killed run had done: Analytics writes, or records fetched. */
  at: number;
  afterMs: number;
}

export class FaultWorld {
  readonly started = Date.now();
  /** Seeded, so a failing kill schedule can be replayed. */
  readonly random: () => number;
  kills = 0;
  reruns = 0;
  /** Exit codes of the runs that were not killed, e.g. `75: 2` for runs that gave up and were rerun. */
  readonly exitCodes = new Map<number, number>();
  /** Where every command keeps its state. */
  readonly state: string;

  private constructor(
    readonly options: WorldOptions,
    readonly crm: CrmServer,
    readonly inventory: InventoryServer,
    readonly h: Harness,
    readonly env: Record<string, string | undefined>,
  ) {
    this.random = mulberry32(options.seed);
    this.state = options.stateFile ?? h.state;
  }

  static async start(options: WorldOptions): Promise<FaultWorld> {
    const { seed, tag } = options;
    const crmToken = `${tag}-crm-token-${seed}`;
    const invPassword = `${tag}-inventory-password-${seed}`;
    const crm = await startCrmServer({
      seed,
      count: options.customers,
      products: options.products,
      token: crmToken,
      ...(options.crmFaults ? { faults: options.crmFaults } : {}),
    });
    const inventory = await startInventoryServer({
      seed,
      count: options.products,
      user: tag,
      password: invPassword,
      pageSize: options.inventoryPageSize ?? 100,
      ...(options.inventoryFaults ? { faults: options.inventoryFaults } : {}),
    });
    const h = await createHarness(
      options.state ?? 'sqlite',
      options.analyticsFaults ? { faults: options.analyticsFaults } : {},
      ...(options.kafka ? [options.kafka] : []),
    );
    const env = isolatedEnv({
      ...h.cliEnv(),
      SYNCCTL_CRM_URL: crm.url,
      SYNCCTL_CRM_TOKEN: crmToken,
      SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
      SYNCCTL_INVENTORY_USER: tag,
      SYNCCTL_INVENTORY_PASSWORD: invPassword,
      SYNCCTL_INVENTORY_BACKOFF_BASE: '50',
      SYNCCTL_INVENTORY_BACKOFF_LIMIT: '1000',
      SYNCCTL_CRM_BACKOFF_LIMIT: '1000',
    });
    return new FaultWorld(options, crm, inventory, h, env);
  }

  /** Global flags pointing a command at this world's broker and state store. */
  common(): string[] {
    return ['--brokers', this.h.brokers, '--state', this.state];
  }

  fetchArgs(source: 'crm' | 'inventory', extra: string[] = []): string[] {
    const topic = source === 'crm' ? this.h.customerTopic : this.h.productTopic;
    return [...this.common(), '--json', 'fetch', '--source', source, '--publish', '--topic', topic, ...extra];
  }

  consumeArgs(extra: string[] = []): string[] {
    return [
      '--json',
      ...this.h.cliArgs().map((arg) => (arg === this.h.state ? this.state : arg)),
      '--once',
      '--session-timeout',
      '6',
      '--idle-timeout',
      '30',
      ...extra,
    ];
  }

  /**
   * Runs a command until it exits 0, as an operator (or cron) reruns a run that stopped with a
   * temporary failure; any other exit code than 0 and 75 is a failure of the scenario.
   */
  async untilClean(args: string[], attempts = 10, timeoutMs = 1_200_000): Promise<CliRun> {
    for (let i = 1; ; i++) {
      const run = await runSyncctl(args, { env: this.env, timeoutMs });
      if (run.code === 0) return run;
      this.exitCodes.set(run.code ?? -1, (this.exitCodes.get(run.code ?? -1) ?? 0) + 1);
      if (run.code !== 75 || i >= attempts) {
        throw new Error(
          `syncctl ${args.join(' ')} exited ${run.code} (${run.signal}):\n${run.stderr.slice(-3000)}`,
        );
      }
      this.reruns++;
    }
  }

  /**
   * Starts the command and SIGKILLs it once `progress()` has moved `step` past where it was, or
   * after `maxMs`, whichever comes first; returns how far it got (null if it finished first).
   */
  async killWhen(
    args: string[],
    progress: () => number,
    step: number,
    maxMs: number,
  ): Promise<KillRecord | null> {
    const begin = Date.now();
    const base = progress();
    const child = startSyncctl(args, this.env);
    let finished = false;
    void child.exited.then(() => (finished = true));
    await waitFor(
      'a kill point',
      () => finished || progress() >= base + step || Date.now() - begin >= maxMs,
      maxMs + 60_000,
    );
    if (finished) {
      const { code } = await child.exited;
      if (code !== 0 && code !== 75)
        throw new Error(`syncctl exited ${code} before its kill:\n${child.stderr().slice(-3000)}`);
      return null;
    }
    child.process.kill('SIGKILL');
    await child.exited;
    this.kills++;
    return { at: progress() - base, afterMs: Date.now() - begin };
  }

  /** Writes stored at Analytics so far (every stored write, replays excluded). */
  analyticsWrites(): number {
    return this.h.server.store.log.length;
  }

  verdict(): OracleVerdict {
    const expected = expectedJoin(this.crm.control.store.records(), this.inventory.control.store.records());
    return judge(expected, {
      records: this.h.server.store
        .currentView()
        .map((e) => ({ customerId: e.customerId, key: e.key, record: e.record })),
      log: this.h.server.store.log,
    });
  }

  /** Dead letters by reason (error class, or code when there is one). */
  async deadLettered(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const m of await readAll(this.h.dlqTopic, this.h.kafka())) {
      const reason = m.headers['syncctl-dlq-error-code'] || m.headers['syncctl-dlq-error-class'] || 'unknown';
      out[reason] = (out[reason] ?? 0) + 1;
    }
    return out;
  }

  /** The scenario's FaultReport (recorded for faults.md/.json) and the verdict to assert on. */
  async report(
    scenario: string,
    description: string,
    details: Record<string, number | string> = {},
  ): Promise<{ report: FaultReport; verdict: OracleVerdict }> {
    const verdict = this.verdict();
    const report: FaultReport = {
      scenario,
      description,
      expected: verdict.expected,
      delivered: verdict.delivered,
      missing: verdict.missing.length,
      storedTwice: verdict.storedTwice.length,
      deadLettered: await this.deadLettered(),
      seconds: (Date.now() - this.started) / 1000,
      details: {
        seed: this.options.seed,
        ...(this.kills > 0 ? { kills: this.kills } : {}),
        ...(this.reruns > 0 ? { reruns: this.reruns } : {}),
        ...(verdict.unexpected.length > 0 ? { 'held but not expected': verdict.unexpected.length } : {}),
        ...Object.fromEntries([...this.exitCodes].map(([code, n]) => [`exit ${code}`, n])),
        ...details,
      },
    };
    recordFaultReport(report);
    return { report, verdict };
  }

  async close(): Promise<void> {
    await this.h.close();
    await this.crm.close();
    await this.inventory.close();
  }
}

/** The scenario's goal: nothing missing, nothing stored twice, nothing Analytics should not hold. */
export function expectClean(verdict: OracleVerdict): void {
  expect(verdict.missing, 'missing at Analytics').toEqual([]);
  expect(verdict.storedTwice, 'stored twice').toEqual([]);
  expect(verdict.unexpected, 'held but not expected').toEqual([]);
}
