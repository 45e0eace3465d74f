/**
 * SPEC "Secrets": every configured secret is looked for in every output an operator or a log shipper
 * sees — stdout, stderr, log files, reject files, dead-letter keys, headers and values, CSV, metrics,
 * `config list`, `status`, `doctor` — across successful runs and failures (wrong credentials).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl } from '../helpers/cli.js';
import { publishAll } from '../helpers/consume-data.js';
import { createHarness, type Harness } from '../helpers/consume-harness.js';
import { readAll, testBrokers } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';

const CRM_SECRET = 'crmTok-Qx7Zk2secretCRM';
const INV_SECRET = 'invPw-Lm4Rt9secretINV';
const AN_SECRET = 'anTok-Vb3Ny6secretANL';
const PG_SECRET = 'pgPw-Hd8Ws1secretPG';
const WRONG_CRM_SECRET = 'wrongCrm-Jf5Ke2secret';
const WRONG_AN_SECRET = 'wrongAn-Pc9Ug4secret';
const WRONG_INV_SECRET = 'wrongInv-Ty2Bo7secret';
const WRONG_KEY_SECRET = 'wrongKey-Zr6Qm1secret';
const KAFKA_SECRET = 'kafkaPw-Rw6Zq3secretKFK';
const pki: TestPki = createTestPki();
const SECRETS = [
  KAFKA_SECRET,
  pki.passphrase,
  WRONG_KEY_SECRET,
  CRM_SECRET,
  INV_SECRET,
  AN_SECRET,
  PG_SECRET,
  WRONG_CRM_SECRET,
  WRONG_AN_SECRET,
  WRONG_INV_SECRET,
];

let crm: CrmServer;
let inventory: InventoryServer;
let h: Harness;
let dir: string;
let state: string;
let env: Record<string, string | undefined>;

/** Every text syncctl produced, with where it came from. */
const outputs: { where: string; text: string }[] = [];

beforeAll(async () => {
  crm = await startCrmServer({ seed: 11, count: 40, products: 6, token: CRM_SECRET });
  inventory = await startInventoryServer({
    seed: 11,
    count: 6,
    user: 'scan',
    password: INV_SECRET,
    faults: { poisonEvery: 4 },
  });
  h = await createHarness('postgres', { token: AN_SECRET });
  state = h.state.replace('postgres://postgres@', `postgres://postgres:${PG_SECRET}@`);
  expect(state).toContain(PG_SECRET);
  dir = tempDir('syncctl-secret-scan-');
  env = isolatedEnv({
    ...h.cliEnv(),
    SYNCCTL_ANALYTICS_TOKEN: AN_SECRET,
    SYNCCTL_CRM_URL: crm.url,
    SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
    SYNCCTL_INVENTORY_USER: 'scan',
    SYNCCTL_INVENTORY_PASSWORD: INV_SECRET,
    SYNCCTL_STATE: state,
    SYNCCTL_BROKERS: testBrokers(),
  });
});

afterAll(async () => {
  await h?.close();
  await crm?.close();
  await inventory?.close();
});

async function syncctl(label: string, args: string[], extraEnv: Record<string, string> = {}) {
  const run = await runSyncctl(args, { env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
  if (process.env.SECRET_SCAN_TRACE)
    process.stderr.write(`${label}: exit ${run.code} in ${run.durationMs} ms\n`);
  outputs.push(
    { where: `${label}: stdout`, text: run.stdout },
    { where: `${label}: stderr`, text: run.stderr },
  );
  return run;
}

const topics = () => [
  '--group',
  h.group,
  '--customer-topic',
  h.customerTopic,
  '--product-topic',
  h.productTopic,
  '--dlq-topic',
  h.dlqTopic,
];

it('finds no configured secret in any output, on success or failure', async () => {
  const log = join(dir, 'syncctl.log');
  const logged = ['--log-format', 'json', '--log-file', log];

  // The CRM token also lives in the profile, so `config list` has it to mask.
  expect((await syncctl('config set', ['config', 'set', 'crm-token', CRM_SECRET])).code).toBe(0);
  // So does the passphrase of an Analytics client key (used only when Analytics speaks HTTPS).
  for (const [key, value] of [
    ['analytics-cert-file', pki.clientCertFile],
    ['analytics-key-file', pki.clientKeyEncryptedFile],
    ['analytics-key-passphrase', pki.passphrase],
  ] as const)
    expect((await syncctl(`config set ${key}`, ['config', 'set', key, value])).code).toBe(0);

  const fetchCrm = await syncctl('fetch crm', [
    ...logged,
    '--json',
    'fetch',
    '--source',
    'crm',
    '--publish',
    '--topic',
    h.customerTopic,
  ]);
  expect(fetchCrm.code, fetchCrm.stderr).toBe(0);
  const fetchInv = await syncctl('fetch inventory', [
    ...logged,
    '-v',
    'fetch',
    '--source',
    'inventory',
    '--publish',
    '--topic',
    h.productTopic,
    '--rejects',
    join(dir, 'inventory.rejects.ndjson'),
  ]);
  expect(fetchInv.code, fetchInv.stderr).toBe(3);

  await publishAll([{ topic: h.customerTopic, raw: [{ key: 'poison', value: 'not an envelope' }] }]);

  // Wrong Analytics token first: the failure path (messages, hints, dead letters) must mask it too.
  await syncctl('consume (wrong token)', [...logged, '-v', 'consume', ...topics(), '--once', '--json'], {
    SYNCCTL_ANALYTICS_TOKEN: WRONG_AN_SECRET,
    SYNCCTL_ANALYTICS_RETRIES: '0',
  });
  const consume = await syncctl('consume', [...logged, 'consume', ...topics(), '--once', '--json']);
  expect([0, 3], consume.stderr).toContain(consume.code);

  await syncctl('replay-dlq --json', ['--json', 'replay-dlq', '--dlq-topic', h.dlqTopic]);
  const csv = join(dir, 'view.csv');
  const exported = await syncctl('export-csv', ['export-csv', '--out', csv]);
  expect(exported.code, exported.stderr).toBe(0);
  await syncctl('status --json', ['--json', 'status', ...topics()]);
  await syncctl('status', ['status', ...topics()]);
  await syncctl('doctor --json', ['--json', 'doctor']);
  await syncctl('doctor', ['-v', 'doctor']);
  await syncctl('config list', ['config', 'list']);
  await syncctl('config list --json', ['--json', 'config', 'list']);
  // The Kafka SASL password in a profile of its own: the test broker speaks PLAINTEXT only.
  const kafkaProfile = ['--profile', 'kafka'];
  await syncctl('config set kafka', [...kafkaProfile, 'config', 'set', 'kafka-sasl-password', KAFKA_SECRET]);
  await syncctl('config list kafka', [...kafkaProfile, 'config', 'list']);
  await syncctl('config list kafka --json', [...kafkaProfile, '--json', 'config', 'list']);
  // SASL against a listener that does not speak it, and SASL without TLS: failures that carry the settings.
  const sasl = {
    SYNCCTL_KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
    SYNCCTL_KAFKA_SASL_USERNAME: 'scan',
    SYNCCTL_KAFKA_SASL_PASSWORD: KAFKA_SECRET,
    SYNCCTL_CONNECT_TIMEOUT: '3000',
  };
  await syncctl('doctor (kafka SASL)', [...logged, '-v', 'doctor'], sasl);
  await syncctl('publish (kafka SASL)', [...logged, '-v', 'publish', '--topic', h.customerTopic], sasl);
  await syncctl(
    'topics describe (kafka password flag)',
    [...logged, '-v', '--kafka-sasl-password', KAFKA_SECRET, 'topics', 'describe', h.customerTopic],
    { SYNCCTL_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', SYNCCTL_KAFKA_SASL_USERNAME: 'scan' },
  );

  const metrics = join(dir, 'run.prom');
  const runLog = join(dir, 'run.log');
  await syncctl('run', [
    '--log-format',
    'json',
    '--log-file',
    runLog,
    'run',
    ...topics(),
    '--metrics-file',
    metrics,
  ]);

  // Failures with wrong credentials, verbose so stacks and causes are printed too.
  await syncctl(
    'fetch crm (wrong token)',
    [...logged, '-v', 'fetch', '--source', 'crm', '--full', '--out', join(dir, 'x.ndjson')],
    {
      SYNCCTL_CRM_TOKEN: WRONG_CRM_SECRET,
    },
  );
  await syncctl(
    'fetch inventory (wrong password)',
    [
      '-v',
      'fetch',
      '--source',
      'inventory',
      '--full',
      '--out',
      join(dir, 'y.ndjson'),
      '--inventory-retries',
      '0',
    ],
    { SYNCCTL_INVENTORY_PASSWORD: WRONG_INV_SECRET },
  );
  await syncctl('doctor (wrong credentials)', ['--json', 'doctor'], {
    SYNCCTL_CRM_TOKEN: WRONG_CRM_SECRET,
    SYNCCTL_ANALYTICS_TOKEN: WRONG_AN_SECRET,
    SYNCCTL_INVENTORY_PASSWORD: WRONG_INV_SECRET,
  });

  await syncctl('doctor (wrong key passphrase)', ['-v', '--json', 'doctor'], {
    SYNCCTL_ANALYTICS_KEY_PASSPHRASE: WRONG_KEY_SECRET,
  });

  for (const file of readdirSync(dir))
    outputs.push({ where: file, text: readFileSync(join(dir, file), 'utf8') });
  const letters = await readAll(h.dlqTopic);
  expect(letters.length).toBeGreaterThan(0);
  for (const l of letters)
    outputs.push({ where: `dead letter ${l.partition}/${l.offset}`, text: JSON.stringify(l) });

  expect(existsSync(log) && existsSync(csv) && existsSync(metrics)).toBe(true);
  expect(readFileSync(join(dir, 'inventory.rejects.ndjson'), 'utf8')).not.toBe('');
  // The scan looks where the secrets would have been: masked in config list, failures reported.
  const out = (where: string) => outputs.find((o) => o.where === where)?.text ?? '';
  expect(out('config list: stdout')).toMatch(/crmToken = \*\*\*/);
  expect(out('config list: stdout')).toMatch(/analyticsKeyPassphrase = \*\*\*/);
  expect(out('doctor (wrong key passphrase): stdout')).toMatch(/cannot decrypt .*wrong or missing/);
  expect(out('config list kafka: stdout')).toMatch(/kafkaSaslPassword = \*\*\*/);
  expect(out('fetch crm (wrong token): stderr')).toMatch(/401/);
  expect(out('fetch inventory (wrong password): stderr')).toMatch(/authentication failed/);
  const hits = outputs.flatMap(({ where, text }) =>
    SECRETS.filter((s) => text.includes(s)).map((s) => {
      const at = text.indexOf(s);
      return `${where}: ${text.slice(Math.max(0, at - 120), at + s.length + 40)}`;
    }),
  );
  expect(hits).toEqual([]);
}, 480_000);
