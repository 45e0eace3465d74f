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

describe('a TLS broker whose certificate is not trusted', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const p12 = readFileSync(certs.brokerKeystore);
    server = createServer({ pfx: p12, passphrase: certs.brokerKeystorePassword }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fails the connect with E_KAFKA_TLS at the first handshake, not after the connect timeout', async () => {
    const other = makeCertificates(join(dir, 'other'));
    const kafka = createKafka({
      brokers: [`127.0.0.1:${port}`],
      connectTimeoutMs: 20_000,
      security: kafkaSecurity(settings({ kafkaSecurityProtocol: 'SSL', kafkaCaFile: other.caFile })),
    });
    const admin = kafka.admin();
    const started = Date.now();
    const err = await admin.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'E_KAFKA_TLS', retryable: false, exitCode: ExitCode.Usage });
    expect((err as Error).message).toContain(
      `TLS handshake with the Kafka broker at 127.0.0.1:${port} failed`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    await admin.disconnect();
  });
});
