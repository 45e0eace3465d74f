/**
 * HTTPS to the three systems with certificates made at test time: a private CA for the CRM and the
 * Inventory service, mutual TLS to Analytics (deliveries and CSV uploads), and the clear refusal when a
 * certificate setting is missing — nothing published, no checkpoint moved, the passphrase never shown.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnalyticsServer, type AnalyticsServer } from '../../fixtures/analytics/server.js';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer, type InventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { firstRound, publishAll, SourceWorld } from '../helpers/consume-data.js';
import { createHarness, type Harness } from '../helpers/consume-harness.js';
import { openTestStore, seed, trickyItems } from '../helpers/export-data.js';
import { createTopic, readAll, testBrokers, uniqueName } from '../helpers/kafka.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';
import { readCheckpoint, readNdjson, tempDir } from './fetch-helpers.js';

const CRM_TOKEN = 'crm-https-token';
const ANALYTICS_TOKEN = 'analytics-https-token';

let pki: TestPki;
let crm: CrmServer;
let inventory: InventoryServer;

beforeAll(async () => {
  pki = createTestPki();
  const tls = { key: pki.serverKey, cert: pki.serverCert };
  crm = await startCrmServer({ seed: 5, count: 120, products: 10, token: CRM_TOKEN, tls });
  inventory = await startInventoryServer({ seed: 5, count: 30, tls });
});

afterAll(async () => {
  await crm?.close();
  await inventory?.close();
});

/** Every run's output is checked for the passphrase. */
function neverShowsPassphrase(run: CliRun): CliRun {
  expect(run.stdout).not.toContain(pki.passphrase);
  expect(run.stderr).not.toContain(pki.passphrase);
  return run;
}

describe('HTTPS to the CRM', () => {
  it('fetches over HTTPS with --crm-ca-file; without it stops with E_TLS, publishing nothing and moving no checkpoint', async () => {
    expect(crm.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const dir = tempDir();
    const state = join(dir, 'state.db');
    const topic = uniqueName('https-customers');
    await createTopic(topic, 1);
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: crm.url,
      SYNCCTL_CRM_TOKEN: CRM_TOKEN,
      SYNCCTL_BROKERS: testBrokers(),
      SYNCCTL_STATE: state,
    });
    const args = ['--json', 'fetch', '--source', 'crm', '--publish', '--topic', topic, '--crm-retries', '0'];

    const refused = await runSyncctl(args, { env });
    expect(refused.code, refused.stderr).toBe(2);
    expect(`${refused.stdout}${refused.stderr}`).toMatch(/"code":\s*"E_TLS"/);
    expect(refused.stderr).toMatch(
      /the CRM at 127\.0\.0\.1:\d+ presented a certificate this machine does not trust/,
    );
    expect(refused.stderr).toContain('--crm-ca-file / SYNCCTL_CRM_CA_FILE');
    expect(await readAll(topic)).toHaveLength(0);
    expect(readCheckpoint<{ highWater?: string }>(state, 'fetch:crm')?.highWater).toBeUndefined();

    const fetched = await runSyncctl([...args, '--crm-ca-file', pki.caFile], { env });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(await readAll(topic)).toHaveLength(120);
    expect(readCheckpoint<{ highWater?: string }>(state, 'fetch:crm')?.highWater).toBeTruthy();
  });

  it('--crm-ca-only trusts that CA alone, and a missing or non-PEM CA file is a config error naming the setting', async () => {
    const dir = tempDir();
    const env = isolatedEnv({
      SYNCCTL_CRM_URL: crm.url,
      SYNCCTL_CRM_TOKEN: CRM_TOKEN,
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const out = join(dir, 'c.ndjson');
    const only = await runSyncctl(
      ['fetch', '--source', 'crm', '--full', '--out', out, '--crm-ca-file', pki.caFile, '--crm-ca-only'],
      { env },
    );
    expect(only.code, only.stderr).toBe(0);
    expect(readNdjson(out)).toHaveLength(120);

    const missing = await runSyncctl(
      ['fetch', '--source', 'crm', '--full', '--out', out, '--crm-ca-file', join(dir, 'nope.pem')],
      { env },
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /--crm-ca-file \/ SYNCCTL_CRM_CA_FILE: .*nope\.pem: no such file \(ENOENT\)/,
    );

    const notPem = await runSyncctl(
      ['fetch', '--source', 'crm', '--full', '--out', out, '--crm-ca-file', pki.serverKeyFile],
      { env },
    );
    expect(notPem.code).toBe(2);
    expect(notPem.stderr).toMatch(/server\.key is not a PEM file of the expected kind/);

    const alone = await runSyncctl(['fetch', '--source', 'crm', '--full', '--out', out, '--crm-ca-only'], {
      env,
    });
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/--crm-ca-only \/ SYNCCTL_CRM_CA_ONLY needs --crm-ca-file/);
  });
});

describe('HTTPS to the Inventory service (SOAP)', () => {
  it('downloads the WSDL and pages the products over HTTPS with --inventory-ca-file; without it E_TLS', async () => {
    expect(inventory.wsdlUrl).toMatch(/^https:/);
    const dir = tempDir();
    const env = isolatedEnv({
      SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
      SYNCCTL_STATE: join(dir, 'state.db'),
    });
    const out = join(dir, 'p.ndjson');
    const refused = await runSyncctl(['fetch', '--source', 'inventory', '--full', '--out', out], { env });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(
      /the Inventory service at 127\.0\.0\.1:\d+ presented a certificate this machine does not trust/,
    );
    expect(refused.stderr).toContain('--inventory-ca-file');
    expect(readNdjson(out)).toHaveLength(0);

    const fetched = await runSyncctl(
      ['fetch', '--source', 'inventory', '--full', '--out', out, '--inventory-ca-file', pki.caFile],
      { env },
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(readNdjson(out)).toHaveLength(30);
  });
});

describe('mutual TLS to the Inventory service', () => {
  it('sends the client certificate from the SOAP client; without one the service refuses clearly', async () => {
    const mtls = await startInventoryServer({
      seed: 6,
      count: 12,
      tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true },
    });
    try {
      const dir = tempDir();
      const env = isolatedEnv({
        SYNCCTL_INVENTORY_WSDL: mtls.wsdlUrl,
        SYNCCTL_INVENTORY_CA_FILE: pki.caFile,
        SYNCCTL_STATE: join(dir, 'state.db'),
      });
      const out = join(dir, 'p.ndjson');
      const args = ['fetch', '--source', 'inventory', '--full', '--out', out, '--inventory-retries', '0'];
      const refused = await runSyncctl(args, { env });
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(
        /the Inventory service at 127\.0\.0\.1:\d+ refused the connection's client certificate/,
      );
      expect(refused.stderr).toContain('--inventory-cert-file');
      const fetched = neverShowsPassphrase(
        await runSyncctl(
          [
            ...args,
            '--inventory-cert-file',
            pki.clientCertFile,
            '--inventory-key-file',
            pki.clientKeyEncryptedFile,
          ],
          { env: { ...env, SYNCCTL_INVENTORY_KEY_PASSPHRASE: pki.passphrase } },
        ),
      );
      expect(fetched.code, fetched.stderr).toBe(0);
      expect(readNdjson(out)).toHaveLength(12);
    } finally {
      await mtls.close();
    }
  });
});

describe('mutual TLS to Analytics', () => {
  let h: Harness;
  let upload: AnalyticsServer;
  let statePath: string;

  beforeAll(async () => {
    const tls = { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true };
    h = await createHarness('sqlite', { tls });
    upload = await startAnalyticsServer({ token: ANALYTICS_TOKEN, tls });
    const store = await openTestStore('sqlite');
    await seed(store.db, trickyItems());
    statePath = store.url;
    await store.close();
  });

  afterAll(async () => {
    await h?.close();
    await upload?.close();
  });

  const clientCert = {
    SYNCCTL_ANALYTICS_CA_FILE: '',
    SYNCCTL_ANALYTICS_CERT_FILE: '',
    SYNCCTL_ANALYTICS_KEY_FILE: '',
    SYNCCTL_ANALYTICS_KEY_PASSPHRASE: '',
  };

  it('consume delivers with a client certificate (encrypted key); without one, or with a stranger, it is refused clearly', async () => {
    Object.assign(clientCert, {
      SYNCCTL_ANALYTICS_CA_FILE: pki.caFile,
      SYNCCTL_ANALYTICS_CERT_FILE: pki.clientCertFile,
      SYNCCTL_ANALYTICS_KEY_FILE: pki.clientKeyEncryptedFile,
      SYNCCTL_ANALYTICS_KEY_PASSPHRASE: pki.passphrase,
    });
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 20, 5);
    await publishAll([
      { topic: h.customerTopic, envelopes: customerEnvelopes },
      { topic: h.productTopic, envelopes: productEnvelopes },
    ]);
    const consume = (env: Record<string, string>) =>
      runSyncctl([...h.cliArgs(), '--once', '--analytics-retries', '0'], {
        env: isolatedEnv({ ...h.cliEnv(), SYNCCTL_ANALYTICS_CA_FILE: pki.caFile, ...env }),
      }).then(neverShowsPassphrase);

    const noCert = await consume({});
    expect(noCert.code, noCert.stderr).toBe(2);
    expect(noCert.stderr).toMatch(
      /Analytics at 127\.0\.0\.1:\d+ refused the connection's client certificate/,
    );
    expect(noCert.stderr).toContain('asks for a client certificate: give one with --analytics-cert-file');
    expect(h.server.store.currentView()).toHaveLength(0);

    const stranger = await consume({
      SYNCCTL_ANALYTICS_CERT_FILE: pki.strangerCertFile,
      SYNCCTL_ANALYTICS_KEY_FILE: pki.strangerKeyFile,
    });
    expect(stranger.code, stranger.stderr).toBe(2);
    expect(stranger.stderr).toMatch(
      /Analytics at 127\.0\.0\.1:\d+ (closed the connection right after the handshake \(ECONNRESET\); it may have refused the client certificate|refused the connection's client certificate)/,
    );
    expect(h.server.store.currentView()).toHaveLength(0);

    const wrongPassphrase = await consume({
      ...clientCert,
      SYNCCTL_ANALYTICS_KEY_PASSPHRASE: 'not-it-at-all',
    });
    expect(wrongPassphrase.code).toBe(2);
    expect(wrongPassphrase.stderr).toMatch(
      /cannot decrypt .*client-encrypted\.key \(wrong or missing --analytics-key-passphrase/,
    );
    expect(wrongPassphrase.stderr).not.toContain('not-it-at-all');

    const delivered = await consume(clientCert);
    expect(delivered.code, delivered.stderr).toBe(0);
    expect(h.server.store.currentView()).toHaveLength(20);
  });

  it('export-csv --upload sends over mutual TLS with the passphrase from a profile, never printing it', async () => {
    const env = isolatedEnv({ SYNCCTL_STATE: statePath });
    for (const [key, value] of [
      ['analytics-ca-file', pki.caFile],
      ['analytics-cert-file', pki.clientCertFile],
      ['analytics-key-file', pki.clientKeyEncryptedFile],
      ['analytics-key-passphrase', pki.passphrase],
    ] as const) {
      const set = neverShowsPassphrase(await runSyncctl(['config', 'set', key, value], { env }));
      expect(set.code, set.stderr).toBe(0);
    }
    const listed = neverShowsPassphrase(await runSyncctl(['config', 'list'], { env }));
    expect(listed.stdout).toMatch(/analyticsKeyPassphrase/);
    const run = neverShowsPassphrase(
      await runSyncctl(
        ['export-csv', '--upload', '--analytics-url', upload.url, '--analytics-token', ANALYTICS_TOKEN],
        {
          env,
        },
      ),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/uploaded: Analytics upload 1, 9 row\(s\)/);
    expect(upload.store.uploads).toHaveLength(1);
  });
});
