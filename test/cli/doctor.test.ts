import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnalyticsServer, type AnalyticsServer } from '../../fixtures/analytics/server.js';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import type { CheckResult, DoctorResult } from '../../src/stages/doctor.js';
import Database from 'better-sqlite3';
import { openDb } from '../../src/state/db.js';
import { MergeStore } from '../../src/state/merge-store.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { createTopic, testBrokers, uniqueName } from '../helpers/kafka.js';

let crm: CrmServer;
let inventory: InventoryServer;
let analytics: AnalyticsServer;
const topics = { customer: uniqueName('doc-c'), product: uniqueName('doc-p'), dlq: uniqueName('doc-d') };

beforeAll(async () => {
  crm = await startCrmServer({ seed: 3, count: 20, token: 'crm-token' });
  inventory = await startInventoryServer({ seed: 3, count: 20, user: 'inv', password: 'inv-pw' });
  analytics = await startAnalyticsServer({ token: 'an-token' });
  await Promise.all([
    createTopic(topics.customer, 2),
    createTopic(topics.product, 2),
    createTopic(topics.dlq, 1),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([crm?.close(), inventory?.close(), analytics?.close()]);
});

function env(extra: Record<string, string> = {}) {
  return isolatedEnv({
    SYNCCTL_BROKERS: testBrokers(),
    SYNCCTL_CUSTOMER_TOPIC: topics.customer,
    SYNCCTL_PRODUCT_TOPIC: topics.product,
    SYNCCTL_DLQ_TOPIC: topics.dlq,
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_CRM_TOKEN: 'crm-token',
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: 'inv',
    SYNCCTL_INVENTORY_PASSWORD: 'inv-pw',
    SYNCCTL_ANALYTICS_URL: analytics.url,
    SYNCCTL_ANALYTICS_TOKEN: 'an-token',
    ...extra,
  });
}

async function doctor(extraEnv: Record<string, string> = {}, args: string[] = []) {
  const run = await runSyncctl(['--json', 'doctor', '--check-timeout', '20', ...args], {
    env: env(extraEnv),
    timeoutMs: 120_000,
  });
  const result = JSON.parse(run.stdout) as DoctorResult;
  const byName = new Map(result.checks.map((c) => [c.name, c]));
  const check = (name: string): CheckResult => {
    const found = byName.get(name);
    if (!found) throw new Error(`no check ${name} in ${run.stdout}`);
    return found;
  };
  return { run, result, check };
}

describe('syncctl doctor', () => {
  it('passes every check against working services and changes nothing', async () => {
    const { run, result, check } = await doctor();
    expect(run.code, run.stderr).toBe(0);
    expect(result.ok).toBe(true);
    for (const name of [
      'kafka broker',
      `topic ${topics.customer}`,
      'crm',
      'inventory',
      'analytics',
      'state store',
    ]) {
      expect(check(name).status, JSON.stringify(check(name))).toBe('pass');
    }
    expect(check('crm').detail).toMatch(/first page: \d+ record/);
    // Read-only: no record reached Analytics, and the SQLite state was not created.
    expect(analytics.store.log).toHaveLength(0);
    expect(check('state store').detail).toMatch(/no state yet/);
    // Secrets never appear in the report.
    expect(run.stdout + run.stderr).not.toMatch(/crm-token|inv-pw|an-token/);
  });

  it('fails each broken dependency with a hint, and exits 1', async () => {
    const { run, check } = await doctor({
      SYNCCTL_CRM_TOKEN: 'wrong-token',
      SYNCCTL_ANALYTICS_TOKEN: 'wrong-token',
      SYNCCTL_INVENTORY_WSDL: `${inventory.url}/no-such.wsdl`,
      SYNCCTL_DLQ_TOPIC: uniqueName('doc-missing'),
    });
    expect(run.code).toBe(1);
    expect(check('crm').status).toBe('fail');
    expect(check('crm').detail).toMatch(/401|token|unauthori/i);
    expect(check('analytics').status).toBe('fail');
    expect(check('analytics').detail).toMatch(/refused the token/);
    expect(check('inventory').status).toBe('fail');
    const missing = [...(JSON.parse(run.stdout) as DoctorResult).checks].find((c) =>
      c.name.startsWith('topic doc-missing'),
    );
    expect(missing?.status).toBe('fail');
    expect(missing?.hint).toMatch(/topics ensure/);
    expect(check('kafka broker').status).toBe('pass');
  });

  it('reports a broker that does not answer within the bound and skips what needs it', async () => {
    const { run, check } = await doctor({ SYNCCTL_BROKERS: '127.0.0.1:1', SYNCCTL_CONNECT_TIMEOUT: '2000' });
    expect(run.code).toBe(1);
    expect(check('kafka broker').status).toBe('fail');
    expect(check(`topic ${topics.customer}`).status).toBe('skip');
    expect(check('crm').status).toBe('pass');
    expect(run.durationMs).toBeLessThan(60_000);
  });

  it('reads the consume schema version of the state store and fails one newer than it knows', async () => {
    const statePath = join(tempDir('syncctl-doctor-'), 'state.db');
    const db = await openDb(statePath);
    await MergeStore.open(db);
    await db.close();
    const current = await doctor({ SYNCCTL_STATE: statePath });
    expect(current.check('state store').status).toBe('pass');
    expect(current.check('state store').detail).toMatch(/consume schema version 2 \(current\)/);
    const raw = new Database(statePath);
    raw.prepare("UPDATE consume_meta SET value = '99' WHERE name = 'schema_version'").run();
    raw.close();
    const newer = await doctor({ SYNCCTL_STATE: statePath });
    expect(newer.run.code).toBe(1);
    expect(newer.check('state store').status).toBe('fail');
    expect(newer.check('state store').detail).toMatch(/version 99 is newer/);
  });

  it('fails a world-readable profiles file and an invalid profile, naming the fix', async () => {
    const home = isolatedEnv();
    const configDir = home.SYNCCTL_CONFIG_DIR as string;
    mkdirSync(configDir, { recursive: true });
    const file = join(configDir, 'profiles.json');
    writeFileSync(file, JSON.stringify({ default: { batchSize: 'lots' } }));
    chmodSync(file, 0o644);
    const { run, check } = await doctor({ SYNCCTL_CONFIG_DIR: configDir });
    expect(run.code).toBe(1);
    expect(check('config file permissions').status).toBe('fail');
    expect(check('config file permissions').hint).toBe(`chmod 600 ${file}`);
    expect(check('config profile').status).toBe('fail');
    expect(check('config profile').detail).toMatch(/batchSize/);
  });

  it('reports a state file others can read, and passes the one syncctl created', async () => {
    const statePath = join(tempDir('syncctl-doctor-mode-'), 'state', 'state.db');
    const db = await openDb(statePath);
    await db.close();
    const created = await doctor({ SYNCCTL_STATE: statePath });
    expect(created.check('state file permissions')).toMatchObject({ status: 'pass' });
    expect(created.check('state file permissions').detail).toMatch(/owner only \(mode 600\)/);
    chmodSync(statePath, 0o644);
    const open = await doctor({ SYNCCTL_STATE: statePath });
    expect(open.run.code).toBe(1);
    expect(open.check('state file permissions')).toMatchObject({
      status: 'fail',
      hint: `chmod 600 ${statePath}`,
    });
    expect(open.check('state file permissions').detail).toMatch(/readable by every user \(mode 644\)/);
    chmodSync(statePath, 0o640);
    const group = await doctor({ SYNCCTL_STATE: statePath });
    expect(group.check('state file permissions').status).toBe('warn');
  });
});
