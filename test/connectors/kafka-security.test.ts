import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../src/connectors/kafka.js';
import { kafkaSecurity, type KafkaSecuritySettings } from '../../src/connectors/kafka-security.js';
import { ConfigError, ExitCode } from '../../src/errors.js';
import { makeCertificates, type CertificateSet } from '../../src/sandbox/certificates.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('syncctl-kafka-security-');
let certs: CertificateSet;

beforeAll(() => {
  certs = makeCertificates(join(dir, 'ca'));
});

function settings(over: Partial<KafkaSecuritySettings>): KafkaSecuritySettings {
  return {
    kafkaSecurityProtocol: 'PLAINTEXT',
    kafkaSaslMechanism: 'scram-sha-512',
    ...over,
  } as KafkaSecuritySettings;
}

function refusal(over: Partial<KafkaSecuritySettings>): ConfigError {
  try {
    kafkaSecurity(settings(over));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('kafkaSecurity', () => {
  it('adds nothing for PLAINTEXT', () => {
    expect(kafkaSecurity(settings({}))).toEqual({ protocol: 'PLAINTEXT' });
  });

  it('gives kafkajs the CA, the client certificate and the SASL credentials for SASL_SSL', () => {
    const security = kafkaSecurity(
      settings({
        kafkaSecurityProtocol: 'SASL_SSL',
        kafkaSaslMechanism: 'plain',
        kafkaSaslUsername: 'alice',
        kafkaSaslPassword: 'pw-123456',
        kafkaCaFile: certs.caFile,
        kafkaCertFile: certs.clientCertFile,
        kafkaKeyFile: certs.clientKeyFile,
      }),
    );
    expect(security.sasl).toEqual({ mechanism: 'plain', username: 'alice', password: 'pw-123456' });
    expect(security.ssl).toMatchObject({
      rejectUnauthorized: true,
      ca: [readFileSync(certs.caFile, 'utf8')],
      cert: readFileSync(certs.clientCertFile, 'utf8'),
      key: readFileSync(certs.clientKeyFile, 'utf8'),
    });
  });

  it('refuses SASL without credentials, naming the settings', () => {
    const err = refusal({ kafkaSecurityProtocol: 'SASL_SSL', kafkaSaslUsername: 'alice' });
    expect(err.message).toMatch(/SASL_SSL needs a SASL user name and password/);
    expect(err.hint).toMatch(/--kafka-sasl-password \/ SYNCCTL_KAFKA_SASL_PASSWORD/);
    expect(err.exitCode).toBe(ExitCode.Usage);
  });

  it('refuses TLS files or SASL credentials the protocol would silently ignore', () => {
    expect(refusal({ kafkaCaFile: certs.caFile }).message).toMatch(
      /--kafka-ca-file .* need TLS, but the Kafka protocol is PLAINTEXT/,
    );
    expect(refusal({ kafkaSecurityProtocol: 'SSL', kafkaSaslPassword: 'pw-123456' }).message).toMatch(
      /need SASL, but the Kafka protocol is SSL/,
    );
  });

  it('refuses a client certificate without its key, and files that are not PEM', () => {
    expect(refusal({ kafkaSecurityProtocol: 'SSL', kafkaCertFile: certs.clientCertFile }).hint).toMatch(
      /--kafka-cert-file .*--kafka-key-file/,
    );
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    expect(
      refusal({ kafkaSecurityProtocol: 'SSL', kafkaCertFile: notPem, kafkaKeyFile: certs.clientKeyFile })
        .message,
    ).toMatch(/the Kafka TLS files cannot be used/);
    expect(refusal({ kafkaSecurityProtocol: 'SSL', kafkaCaFile: join(dir, 'missing.pem') }).message).toMatch(
      /cannot read .*missing\.pem \(--kafka-ca-file/,
    );
  });
});

/** A TLS listener that presents the broker certificate of `set` and then hangs up, like a broker would on garbage. */
async function tlsListener(set: CertificateSet): Promise<{ port: number; server: Server }> {
  const server = createServer(
    { pfx: readFileSync(set.brokerKeystore), passphrase: set.brokerKeystorePassword },
    (socket) => socket.end(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function connectError(port: number, caFile: string): Promise<unknown> {
  const kafka = createKafka({
    brokers: [`127.0.0.1:${port}`],
    connectTimeoutMs: 20_000,
    security: kafkaSecurity(settings({ kafkaSecurityProtocol: 'SSL', kafkaCaFile: caFile })),
  });
  const admin = kafka.admin();
  try {
    return await admin.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
  } finally {
    await admin.disconnect();
  }
}

describe('a TLS broker that cannot be trusted', () => {
  const servers: Server[] = [];

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it('fails the connect with E_KAFKA_TLS at the first handshake, not after the connect timeout', async () => {
    const { server, port } = await tlsListener(certs);
    servers.push(server);
    const other = makeCertificates(join(dir, 'other'));
    const started = Date.now();
    const err = await connectError(port, other.caFile);
    expect(err).toMatchObject({ code: 'E_KAFKA_TLS', retryable: false, exitCode: ExitCode.Usage });
    expect((err as Error).message).toContain(
      `TLS handshake with the Kafka broker at 127.0.0.1:${port} failed`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fails with E_KAFKA_TLS when its certificate names another host, pointing at --brokers', async () => {
    const elsewhere = makeCertificates(join(dir, 'elsewhere'), ['kafka.example.invalid']);
    const { server, port } = await tlsListener(elsewhere);
    servers.push(server);
    const err = await connectError(port, elsewhere.caFile);
    expect(err).toMatchObject({ code: 'E_KAFKA_TLS', exitCode: ExitCode.Usage });
    expect((err as Error).message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect((err as { hint?: string }).hint).toMatch(
      /does not name the address .*--brokers \/ SYNCCTL_BROKERS/,
    );
  });
});
