/**
 * Kafka over SASL_SSL (SCRAM-SHA-512, PLAIN) and mTLS against the secure sandbox broker
 * (`sandbox up --secure`): end to end, read back by kcat, and the failures an operator meets —
 * a wrong password, an untrusted CA, no client certificate — each a coded error that is not retried.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { makeCertificates } from '../../src/sandbox/certificates.js';
import { isolatedEnv, runSyncctl, type CliRun } from '../helpers/cli.js';
import { sampleEnvelopes, writeNdjson } from '../helpers/envelopes.js';
import { kcat } from '../helpers/external.js';
import { uniqueName } from '../helpers/kafka.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('syncctl-kafka-secure-');
const base = isolatedEnv({ SYNCCTL_SANDBOX_DIR: join(dir, 'sandbox') });
let listeners: { SASL_SSL: string; SSL: string; PLAINTEXT: string };
/** What `sandbox env --json` gives: the SASL_SSL settings, the password among them. */
let secure: Record<string, string>;
let password: string;

/** Every output of a command that used the password, to scan for it. */
const outputs: { where: string; text: string }[] = [];

async function syncctl(label: string, args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  const run = await runSyncctl(args, { env: { ...base, ...secure, ...extra }, timeoutMs: 120_000 });
  outputs.push(
    { where: `${label}: stdout`, text: run.stdout },
    { where: `${label}: stderr`, text: run.stderr },
  );
  return run;
}

function errorCode(run: CliRun): string | undefined {
  return (JSON.parse(run.stdout) as { error?: { code?: string } }).error?.code;
}

beforeAll(async () => {
  const up = await runSyncctl(['--json', 'sandbox', 'up', '--secure'], { env: base, timeoutMs: 180_000 });
  expect(up.code, up.stderr).toBe(0);
  listeners = (JSON.parse(up.stdout) as { kafkaListeners: typeof listeners }).kafkaListeners;
  const env = await runSyncctl(['--json', 'sandbox', 'env'], { env: base });
  expect(env.code, env.stderr).toBe(0);
  secure = JSON.parse(env.stdout) as Record<string, string>;
  password = secure.SYNCCTL_KAFKA_SASL_PASSWORD ?? '';
  expect(password.length).toBeGreaterThanOrEqual(16);
}, 200_000);

afterAll(async () => {
  await runSyncctl(['sandbox', 'down'], { env: base, timeoutMs: 60_000 });
});

function envelopesFile(name: string, count: number, keys: number): string {
  const file = join(dir, `${name}.ndjson`);
  writeNdjson(file, sampleEnvelopes(count, keys));
  return file;
}

describe('sandbox up --secure', () => {
  it('prints the SASL_SSL address, and sandbox env the settings a client needs', async () => {
    expect(secure).toMatchObject({
      SYNCCTL_BROKERS: listeners.SASL_SSL,
      SYNCCTL_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      SYNCCTL_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SYNCCTL_KAFKA_SASL_USERNAME: 'syncctl',
    });
    expect(readFileSync(secure.SYNCCTL_KAFKA_CA_FILE ?? '', 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    const shell = await runSyncctl(['sandbox', 'env'], { env: base });
    expect(shell.stdout).toContain(`export SYNCCTL_KAFKA_SECURITY_PROTOCOL='SASL_SSL'`);
    expect(shell.stdout).toContain(`export SYNCCTL_BROKERS='${listeners.SASL_SSL}'`);
  });
});

describe('Kafka over SASL_SSL', () => {
  it('publishes and consumes end to end with SCRAM-SHA-512', async () => {
    const topic = uniqueName('secure-customers');
    const names = [
      '--customer-topic',
      topic,
      '--product-topic',
      uniqueName('secure-products'),
      '--dlq-topic',
      uniqueName('secure-dlq'),
    ];
    const ensure = await syncctl('topics ensure', ['--json', 'topics', 'ensure', ...names]);
    expect(ensure.code, ensure.stderr).toBe(0);
    const published = await syncctl('publish', [
      '--json',
      'publish',
      '--topic',
      topic,
      '--in',
      envelopesFile('scram', 30, 6),
    ]);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ topic, records: 30 });
    const consumed = await syncctl('consume', [
      '--json',
      '--state',
      join(dir, 'state.db'),
      'consume',
      '--once',
      '--group',
      uniqueName('secure-group'),
      ...names,
    ]);
    expect(consumed.code, consumed.stderr).toBe(0);
    // 30 versions of 6 customers: each customer delivered once, at its latest version.
    expect(JSON.parse(consumed.stdout)).toMatchObject({ delivered: 6 });
  });

  it('publishes with SASL/PLAIN over TLS; kcat reads it back over SASL_SSL', async () => {
    const topic = uniqueName('secure-plain');
    const env = { SYNCCTL_KAFKA_SASL_MECHANISM: 'plain' };
    const ensure = await syncctl(
      'topics ensure (plain)',
      ['topics', 'ensure', '--customer-topic', topic],
      env,
    );
    expect(ensure.code, ensure.stderr).toBe(0);
    const published = await syncctl(
      'publish (plain)',
      ['--json', 'publish', '--topic', topic, '--in', envelopesFile('plain', 12, 4)],
      env,
    );
    expect(published.code, published.stderr).toBe(0);
    // librdkafka before 2.6.1 (kcat 1.7 here) fails SCRAM against Kafka 4 (confluentinc/librdkafka#4895): PLAIN it is.
    const read = await kcat([
      '-C',
      '-b',
      listeners.SASL_SSL,
      '-X',
      'security.protocol=SASL_SSL',
      '-X',
      'sasl.mechanisms=PLAIN',
      '-X',
      'sasl.username=syncctl',
      '-X',
      `sasl.password=${password}`,
      '-X',
      `ssl.ca.location=${secure.SYNCCTL_KAFKA_CA_FILE}`,
      '-t',
      topic,
      '-e',
      '-q',
      '-f',
      '%k\n',
    ]);
    const keys = read.trim().split('\n');
    expect(keys).toHaveLength(12);
    expect(new Set(keys)).toEqual(new Set(['C0', 'C1', 'C2', 'C3']));
  });

  it('a wrong password fails at once with E_KAFKA_AUTH (exit 2), tried once', async () => {
    const wrong = { SYNCCTL_KAFKA_SASL_PASSWORD: 'not-the-password-1234' };
    const run = await syncctl(
      'publish (wrong password)',
      ['--json', '-v', 'publish', '--topic', 'customer_data', '--in', envelopesFile('wrong', 3, 3)],
      wrong,
    );
    expect(run.code, run.stderr).toBe(ExitCode.Usage);
    expect(errorCode(run)).toBe('E_KAFKA_AUTH');
    expect(run.stderr).toMatch(/SASL authentication to Kafka at 127\.0\.0\.1:\d+ failed/);
    expect(run.stderr).toMatch(/--kafka-sasl-password \/ SYNCCTL_KAFKA_SASL_PASSWORD/);
    expect(run.stderr.match(/Response SaslAuthenticate/g)).toHaveLength(1);
    expect(run.durationMs).toBeLessThan(15_000);

    const consume = await syncctl('consume (wrong password)', ['--json', 'consume', '--once'], wrong);
    expect(consume.code, consume.stderr).toBe(ExitCode.Usage);
    expect(errorCode(consume)).toBe('E_KAFKA_AUTH');
  });

  it('an untrusted CA fails with E_KAFKA_TLS naming the broker and --kafka-ca-file (exit 2)', async () => {
    const other = makeCertificates(join(dir, 'other-ca'));
    for (const [label, env] of [
      ['another CA', { SYNCCTL_KAFKA_CA_FILE: other.caFile }],
      ['the system CAs', { SYNCCTL_KAFKA_CA_FILE: '' }],
    ] as const) {
      const run = await syncctl(`topics describe (${label})`, ['--json', 'topics', 'describe'], env);
      expect(run.code, `${label}: ${run.stderr}`).toBe(ExitCode.Usage);
      expect(errorCode(run)).toBe('E_KAFKA_TLS');
      expect(run.stderr).toContain(`TLS handshake with the Kafka broker at ${listeners.SASL_SSL} failed`);
      expect(run.stderr).toMatch(/self-signed certificate in certificate chain/);
      expect(run.stderr).toMatch(/hint: point --kafka-ca-file \/ SYNCCTL_KAFKA_CA_FILE at the CA/);
      // Failed on the first handshake, not after the connect timeout.
      expect(run.durationMs).toBeLessThan(15_000);
    }
  });
});

describe('Kafka over SSL with a client certificate (mTLS)', () => {
  const mtls = () => ({
    SYNCCTL_BROKERS: listeners.SSL,
    SYNCCTL_KAFKA_SECURITY_PROTOCOL: 'SSL',
    SYNCCTL_KAFKA_SASL_USERNAME: '',
    SYNCCTL_KAFKA_SASL_PASSWORD: '',
  });

  it('publishes with the client certificate; without one the broker refuses: E_KAFKA_TLS', async () => {
    const tls = join(base.SYNCCTL_SANDBOX_DIR ?? '', 'tls');
    const withCert = {
      ...mtls(),
      SYNCCTL_KAFKA_CERT_FILE: join(tls, 'client.pem'),
      SYNCCTL_KAFKA_KEY_FILE: join(tls, 'client.key'),
    };
    const topic = uniqueName('secure-mtls');
    expect(
      (await syncctl('topics ensure (mtls)', ['topics', 'ensure', '--customer-topic', topic], withCert)).code,
    ).toBe(0);
    const published = await syncctl(
      'publish (mtls)',
      ['--json', 'publish', '--topic', topic, '--in', envelopesFile('mtls', 5, 5)],
      withCert,
    );
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ topic, records: 5 });

    const refused = await syncctl(
      'topics describe (no client cert)',
      ['--json', 'topics', 'describe'],
      mtls(),
    );
    expect(refused.code, refused.stderr).toBe(ExitCode.Usage);
    expect(errorCode(refused)).toBe('E_KAFKA_TLS');
    expect(refused.stderr).toMatch(
      /hint: the broker refused our client certificate: check --kafka-cert-file/,
    );
  });
});

describe('the SASL password', () => {
  it('never appears in stdout, stderr, logs, config list or doctor', async () => {
    const log = join(dir, 'syncctl.log');
    const logged = ['--log-format', 'json', '--log-file', log, '-v'];
    const profile = ['--profile', 'secure'];
    expect(
      (await syncctl('config set', [...profile, 'config', 'set', 'kafka-sasl-password', password])).code,
    ).toBe(0);
    const list = await syncctl('config list', [...profile, 'config', 'list']);
    expect(list.stdout).toMatch(/kafkaSaslPassword = \*\*\*/);
    await syncctl('config list --json', [...profile, '--json', 'config', 'list']);
    const doctor = await syncctl('doctor', [...logged, 'doctor']);
    expect(doctor.stdout).toMatch(
      /kafka broker\s+ok\s+\d+ ms\s+127\.0\.0\.1:\d+ \(SASL_SSL, SCRAM-SHA-512 as syncctl\)/,
    );
    await syncctl('doctor --json', [...logged, '--json', 'doctor']);
    await syncctl('doctor (wrong password)', [...logged, 'doctor'], {
      SYNCCTL_KAFKA_SASL_PASSWORD: `${password}x`,
    });
    await syncctl('status', [...logged, 'status']);
    // A flag (which ps shows, but syncctl must not repeat) as well as the variable.
    await syncctl('topics describe --kafka-sasl-password', [
      ...logged,
      '--kafka-sasl-password',
      password,
      'topics',
      'describe',
    ]);
    outputs.push({ where: 'log file', text: readFileSync(log, 'utf8') });
    const hits = outputs.filter((o) => o.text.includes(password)).map((o) => o.where);
    expect(hits).toEqual([]);
  });
});
