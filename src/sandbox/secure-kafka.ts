/**
 * A local broker that clients reach the way production Kafka is usually reached: SASL_SSL with
 * SCRAM-SHA-512 (also SCRAM-SHA-256 and PLAIN) on a certificate from a private CA, plus an SSL
 * listener that requires a client certificate (mTLS). The controller and the broker's own traffic
 * stay on PLAINTEXT listeners bound to 127.0.0.1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { envName } from '../settings/index.js';
import { makeCertificates } from './certificates.js';
import { freePort, startBroker, stopProcess, tcpAnswers, type BrokerHandle } from './kafka-broker.js';

export const SECURE_KAFKA_USER = 'syncctl';

/** What a client needs to reach the secure broker; the password is kept in a file only its owner reads. */
export interface SecureKafka {
  /** SASL_SSL address: what SYNCCTL_BROKERS points at. */
  saslSsl: string;
  /** SSL address that requires a client certificate. */
  mtls: string;
  /** The broker's own PLAINTEXT listener (inter-broker traffic; admin tools on this machine). */
  plaintext: string;
  caFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  username: string;
}

export interface SecureBrokerHandle extends BrokerHandle {
  secure: SecureKafka;
}

const CREDENTIALS_FILE = 'kafka-credentials.json';

function jaasQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Starts a single-node KRaft broker with SASL_SSL and mTLS listeners in `dir` (see kafka-broker.ts). */
export async function startSecureBroker(options: {
  dir: string;
  port?: number;
}): Promise<SecureBrokerHandle> {
  const tls = makeCertificates(join(options.dir, 'tls'));
  const password = randomBytes(16).toString('hex');
  const saslPort = options.port ?? (await freePort());
  const mtlsPort = await freePort();
  const plainPort = await freePort();
  const scram = ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((mechanism) => [
    '--add-scram',
    `${mechanism}=[name=${SECURE_KAFKA_USER},password=${password}]`,
  ]);
  // server.properties holds the passwords: created owner-only before the launcher writes it.
  writeFileSync(join(options.dir, 'server.properties'), '', { mode: 0o600 });
  const scramLogin = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
  const broker = await startBroker({
    dir: options.dir,
    port: plainPort,
    formatArgs: scram,
    extraProperties: ({ port, controllerPort }) => [
      `listeners=PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${mtlsPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${mtlsPort}`,
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
      'sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN',
      `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scramLogin}`,
      `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${scramLogin}`,
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SECURE_KAFKA_USER}=${jaasQuote(password)};`,
      'ssl.keystore.type=PKCS12',
      `ssl.keystore.location=${tls.brokerKeystore}`,
      `ssl.keystore.password=${tls.brokerKeystorePassword}`,
      `ssl.key.password=${tls.brokerKeystorePassword}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${tls.caFile}`,
      'listener.name.ssl.ssl.client.auth=required',
    ],
  });
  for (const port of [saslPort, mtlsPort]) {
    const deadline = Date.now() + 30_000;
    while (!(await tcpAnswers('127.0.0.1', port))) {
      if (Date.now() > deadline) {
        await stopProcess(broker.pid);
        throw new SandboxError(
          `the secure Kafka listener on 127.0.0.1:${port} did not open; see ${broker.logFile}`,
        );
      }
      await sleep(200);
    }
  }
  const secure: SecureKafka = {
    saslSsl: `127.0.0.1:${saslPort}`,
    mtls: `127.0.0.1:${mtlsPort}`,
    plaintext: broker.brokers,
    caFile: tls.caFile,
    clientCertFile: tls.clientCertFile,
    clientKeyFile: tls.clientKeyFile,
    username: SECURE_KAFKA_USER,
  };
  writeFileSync(join(options.dir, CREDENTIALS_FILE), JSON.stringify({ ...secure, password }, null, 2), {
    mode: 0o600,
  });
  return { ...broker, brokers: secure.saslSsl, secure };
}

/**
 * The SYNCCTL_* settings that point a command at the secure broker in `dir` (SASL_SSL with
 * SCRAM-SHA-512), or undefined when the sandbox there is not a secure one.
 */
export function secureKafkaEnv(dir: string): Record<string, string> | undefined {
  const file = join(dir, CREDENTIALS_FILE);
  if (!existsSync(file)) return undefined;
  const c = JSON.parse(readFileSync(file, 'utf8')) as SecureKafka & { password: string };
  return {
    SYNCCTL_BROKERS: c.saslSsl,
    [envName('kafkaSecurityProtocol')]: 'SASL_SSL',
    [envName('kafkaSaslMechanism')]: 'scram-sha-512',
    [envName('kafkaSaslUsername')]: c.username,
    [envName('kafkaSaslPassword')]: c.password,
    [envName('kafkaCaFile')]: c.caFile,
  };
}
