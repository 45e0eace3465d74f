/**
 * `doctor`: one pass over everything a sync depends on, each check bounded in time, so an operator
 * (or a cron wrapper) learns what is broken before a run fails half-way. Checks read only: no
 * topic is created, no checkpoint moved, no record sent.
 */
import { existsSync, statSync } from 'node:fs';
import got, { HTTPError } from 'got';
import type { Kafka } from 'kafkajs';
import { analyticsConfigFromSettings } from '../connectors/analytics-sink.js';
import { CrmSource, crmConfigFromSettings } from '../connectors/crm-source.js';
import { inventoryConfigFromSettings, openInventorySource } from '../connectors/inventory-source.js';
import { toKafkaError } from '../connectors/kafka.js';
import type { SourceConnector } from '../connectors/source.js';
import { ClientTls } from '../connectors/tls.js';
import { toSyncError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { redact } from '../redact.js';
import {
  ANALYTICS_SETTINGS,
  CONSUME_SETTINGS,
  CRM_SETTINGS,
  INVENTORY_SETTINGS,
  flagName,
  resolveSettings,
  TOPIC_SETTINGS,
  whereToSet,
  type SettingsSource,
} from '../settings/index.js';
import { isPostgresUrl, isSqliteFile, openDb, redactUrl } from '../state/db.js';
import { MERGE_SCHEMA_VERSION, schemaVersion } from '../state/merge-schema.js';
import { loadSettings } from '../settings/profiles.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  ms: number;
  detail: string;
  hint?: string;
}

export interface DoctorResult {
  ok: boolean;
  checks: CheckResult[];
}

export interface DoctorOptions {
  settings: SettingsSource;
  /** The command's flags (setting keys), over the profile and environment. */
  flags: Readonly<Record<string, unknown>>;
  /** Null when the broker list itself is unusable (reported as a failed check). */
  kafka: {
    client: Kafka;
    brokers: string[];
    /** How it connects when not PLAINTEXT, e.g. "SASL_SSL, SCRAM-SHA-512 as syncctl". */
    security?: string;
  } | null;
  brokersError?: string;
  /** What to fix when the Kafka settings are unusable (a TLS file, SASL credentials); else the brokers. */
  brokersHint?: string;
  statePath: string;
  /** Bound of each check; a check still running then fails as "no answer". */
  checkTimeoutMs: number;
  logger?: Logger;
}

type Outcome = Omit<CheckResult, 'name' | 'ms'>;

class CheckTimeout extends Error {}

async function timed(name: string, timeoutMs: number, body: () => Promise<Outcome>): Promise<CheckResult> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await Promise.race([
      body(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout()), timeoutMs);
      }),
    ]);
    return { name, ms: Date.now() - started, ...outcome };
  } catch (err) {
    if (err instanceof CheckTimeout) {
      return {
        name,
        ms: Date.now() - started,
        status: 'fail',
        detail: `no answer within ${timeoutMs / 1000} s`,
        hint: 'check the address and that the service is up',
      };
    }
    const error = toSyncError(err);
    return {
      name,
      ms: Date.now() - started,
      status: 'fail',
      detail: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  } finally {
    clearTimeout(timer);
  }
}

function profileCheck(options: DoctorOptions): Outcome {
  const { settings } = options;
  // Loaded again with validation on: the command itself started tolerant so the rest still runs.
  loadSettings(settings.profileName === 'default' ? undefined : settings.profileName, settings.env);
  const keys = Object.keys(settings.profile).length;
  return {
    status: 'pass',
    detail:
      keys === 0
        ? `profile "${settings.profileName}" has no settings (environment and defaults only)`
        : `profile "${settings.profileName}" (${keys} setting(s)) in ${settings.profilePath}`,
  };
}

/** `holds` says what another user could read there. */
function permissionsCheck(path: string, what: string, holds: string): Outcome {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return { status: 'skip', detail: `no ${what} (${path})` };
  }
  const octal = (mode & 0o777).toString(8);
  if (mode & 0o004) {
    return {
      status: 'fail',
      detail: `${path} is readable by every user (mode ${octal}); it may hold ${holds}`,
      hint: `chmod 600 ${path}`,
    };
  }
  if (mode & 0o040) {
    return {
      status: 'warn',
      detail: `${path} is readable by its group (mode ${octal})`,
      hint: `chmod 600 ${path}`,
    };
  }
  return { status: 'pass', detail: `${path} is readable by its owner only (mode ${octal})` };
}

async function stateCheck(statePath: string): Promise<Outcome> {
  // Read-only: a SQLite file that does not exist yet is not created here.
  if (!isPostgresUrl(statePath) && !existsSync(statePath)) {
    return { status: 'pass', detail: `no state yet at ${statePath} (the first run creates it)` };
  }
  const db = await openDb(statePath);
  try {
    const tables =
      db.kind === 'sqlite'
        ? await db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        : await db.query(
            'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
          );
    const where = `${db.kind} at ${redactUrl(db.location)}`;
    const names = new Set(tables.map((t) => String(Object.values(t)[0])));
    if (!names.has('consume_customers')) {
      return { status: 'pass', detail: `${where} opens (${tables.length} table(s), no consume state yet)` };
    }
    const version = names.has('consume_meta') ? await schemaVersion(db) : 1;
    if (version > MERGE_SCHEMA_VERSION) {
      return {
        status: 'fail',
        detail: `${where}: consume schema version ${version} is newer than this syncctl knows (${MERGE_SCHEMA_VERSION})`,
        hint: 'a newer syncctl wrote this store: upgrade syncctl on this machine',
      };
    }
    if (version < MERGE_SCHEMA_VERSION) {
      return {
        status: 'warn',
        detail: `${where}: consume schema version ${version}; the next consume upgrades it to ${MERGE_SCHEMA_VERSION}`,
      };
    }
    return { status: 'pass', detail: `${where} opens, consume schema version ${version} (current)` };
  } finally {
    await db.close();
  }
}

/** The first page only, without retries: doctor asks "does it answer and accept us", not "is it busy". */
async function firstPage(connector: SourceConnector): Promise<Outcome> {
  try {
    for await (const page of connector.pages({})) {
      const rejects = page.rejects.length;
      return {
        status: rejects > 0 && page.envelopes.length === 0 ? 'warn' : 'pass',
        detail: `first page: ${page.envelopes.length} record(s)${rejects > 0 ? `, ${rejects} that cannot be read` : ''}`,
        ...(rejects > 0 ? { hint: `first reject: ${redact(page.rejects[0]?.reason ?? '')}` } : {}),
      };
    }
    return { status: 'pass', detail: 'answers; no records' };
  } finally {
    await connector.close().catch(() => {});
  }
}

function notConfigured(key: string): Outcome {
  return { status: 'skip', detail: 'not configured', hint: `set ${whereToSet(key)}` };
}

async function analyticsCheck(options: DoctorOptions): Promise<Outcome> {
  const config = analyticsConfigFromSettings(options.settings, { ...options.flags });
  const url = new URL('v1/health', config.url.endsWith('/') ? config.url : `${config.url}/`);
  const tls = new ClientTls('analytics', config.tls);
  try {
    const response = await got(url, {
      headers: { authorization: `Bearer ${config.token}` },
      https: tls.got,
      timeout: { request: Math.min(config.timeoutMs, options.checkTimeoutMs) },
      retry: { limit: 0 },
    });
    return { status: 'pass', detail: `${redact(url.origin)} answers ${response.statusCode}, token accepted` };
  } catch (err) {
    const tlsError = tls.explain(err, url.href, true);
    if (tlsError) return { status: 'fail', detail: tlsError.message, hint: tlsError.hint };
    if (err instanceof HTTPError) {
      const status = err.response.statusCode;
      if (status === 401 || status === 403) {
        return {
          status: 'fail',
          detail: `${redact(url.origin)} refused the token (HTTP ${status})`,
          hint: `check ${flagName('analyticsToken')}`,
        };
      }
      return { status: 'fail', detail: `GET ${redact(url.href)} answered HTTP ${status}` };
    }
    return {
      status: 'fail',
      detail: `cannot reach Analytics at ${redact(url.origin)}: ${(err as Error).message}`,
      hint: `check ${flagName('analyticsUrl')} and that the service is up`,
    };
  }
}

async function kafkaChecks(options: DoctorOptions, results: CheckResult[]): Promise<void> {
  const timeoutMs = options.checkTimeoutMs;
  const names = resolveSettings(TOPIC_SETTINGS, options.settings, options.flags);
  const { group } = resolveSettings(CONSUME_SETTINGS, options.settings, options.flags);
  const topics = [names.customerTopic, names.productTopic, names.dlqTopic];
  if (options.kafka === null) {
    results.push({
      name: 'kafka broker',
      ms: 0,
      status: 'fail',
      detail: options.brokersError ?? 'no brokers',
      hint: options.brokersHint ?? `set ${whereToSet('brokers')}`,
    });
    return;
  }
  const { client, brokers, security } = options.kafka;
  const admin = client.admin();
  const broker = await timed('kafka broker', timeoutMs, async () => {
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return {
        status: 'pass',
        detail: `${brokers.join(',')}${security ? ` (${security})` : ''}: ${cluster.brokers.length} broker(s), controller ${cluster.controller ?? 'unknown'}, cluster ${cluster.clusterId}`,
      };
    } catch (err) {
      throw toKafkaError(err, brokers, 'connecting');
    }
  });
  results.push(broker);
  try {
    if (broker.status === 'fail') {
      for (const topic of topics) {
        results.push({ name: `topic ${topic}`, ms: 0, status: 'skip', detail: 'broker unreachable' });
      }
      results.push({ name: `consumer group ${group}`, ms: 0, status: 'skip', detail: 'broker unreachable' });
      return;
    }
    const existing = new Set(await admin.listTopics());
    for (const topic of topics) {
      results.push(
        await timed(`topic ${topic}`, timeoutMs, async () => {
          if (!existing.has(topic)) {
            return {
              status: 'fail',
              detail: 'does not exist',
              hint: 'create it with `syncctl topics ensure`',
            };
          }
          const meta = await admin.fetchTopicMetadata({ topics: [topic] });
          const partitions = meta.topics[0]?.partitions ?? [];
          const leaderless = partitions.filter((p) => p.leader < 0).length;
          const replicas = Math.min(...partitions.map((p) => p.replicas.length));
          const underReplicated = partitions.filter((p) => p.isr.length < p.replicas.length).length;
          const detail = `${partitions.length} partition(s), replication ${replicas}`;
          if (leaderless > 0) {
            return {
              status: 'fail',
              detail: `${detail}; ${leaderless} partition(s) without a leader`,
              hint: 'a broker holding them is down',
            };
          }
          if (underReplicated > 0)
            return { status: 'warn', detail: `${detail}; ${underReplicated} under-replicated` };
          return { status: 'pass', detail };
        }),
      );
    }
    results.push(
      await timed(`consumer group ${group}`, timeoutMs, async () => {
        const described = await admin.describeGroups([group]);
        const info = described.groups[0];
        const state = info?.state ?? 'Unknown';
        if (state === 'Dead') return { status: 'pass', detail: 'not created yet (no consume run so far)' };
        return { status: 'pass', detail: `${state}, ${info?.members.length ?? 0} member(s)` };
      }),
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function doctor(options: DoctorOptions): Promise<DoctorResult> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.checkTimeoutMs;
  const { settings, flags } = options;
  // The same precedence as every command (flag > SYNCCTL_* > profile); an empty value is unset.
  const configured = (key: 'crmUrl' | 'inventoryWsdl' | 'analyticsUrl') => {
    const group = { ...CRM_SETTINGS, ...INVENTORY_SETTINGS, ...ANALYTICS_SETTINGS };
    return resolveSettings({ [key]: group[key] }, settings, flags)[key] !== undefined;
  };
  const results: CheckResult[] = [];
  results.push(await timed('config profile', timeoutMs, async () => profileCheck(options)));
  results.push(
    await timed('config file permissions', timeoutMs, async () =>
      permissionsCheck(settings.profilePath, 'profiles file', 'tokens and passwords'),
    ),
  );
  results.push(await timed('state store', timeoutMs, () => stateCheck(options.statePath)));
  if (isSqliteFile(options.statePath)) {
    results.push(
      await timed('state file permissions', timeoutMs, async () =>
        permissionsCheck(options.statePath, 'state file yet', 'customer and product records'),
      ),
    );
  }
  await kafkaChecks(options, results);

  // Retries off: a failure should show at once, not after the connector's back-off schedule.
  results.push(
    configured('crmUrl')
      ? await timed('crm', timeoutMs, () =>
          firstPage(new CrmSource(crmConfigFromSettings(settings, { ...flags, crmRetries: 0 }), { logger })),
        )
      : { name: 'crm', ms: 0, ...notConfigured('crmUrl') },
  );
  results.push(
    configured('inventoryWsdl')
      ? await timed('inventory', timeoutMs, async () =>
          firstPage(
            await openInventorySource(
              inventoryConfigFromSettings(settings, { ...flags, inventoryRetries: 0 }),
              {
                logger,
              },
            ),
          ),
        )
      : { name: 'inventory', ms: 0, ...notConfigured('inventoryWsdl') },
  );
  results.push(
    configured('analyticsUrl')
      ? await timed('analytics', timeoutMs, () => analyticsCheck(options))
      : { name: 'analytics', ms: 0, ...notConfigured('analyticsUrl') },
  );
  return { ok: results.every((r) => r.status !== 'fail'), checks: results };
}
