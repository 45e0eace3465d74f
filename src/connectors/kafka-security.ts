/**
 * The one place that turns the --kafka-* security settings into kafkajs's `ssl` and `sasl` options,
 * and tells TLS and SASL failures apart from an unreachable broker, so they are reported as the
 * configuration errors they are instead of being retried.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { isIP, connect as netConnect } from 'node:net';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions } from 'node:tls';
import type { ISocketFactory, SASLOptions } from 'kafkajs';
import { ConfigError, KafkaAuthError, KafkaTlsError, type SyncError } from '../errors.js';
import { CLIENT_REFUSED, EXPIRED, UNTRUSTED } from './tls.js';
import { flagsAndEnv, GLOBAL_SETTINGS, KAFKA_SETTINGS, type SettingValues } from '../settings/index.js';

export type KafkaSecuritySettings = SettingValues<typeof KAFKA_SETTINGS>;

export interface KafkaSecurity {
  protocol: KafkaSecuritySettings['kafkaSecurityProtocol'];
  ssl?: ConnectionOptions;
  sasl?: SASLOptions;
}

const KEEP_ALIVE_DELAY_MS = 60_000;

function readPem(key: 'kafkaCaFile' | 'kafkaCertFile' | 'kafkaKeyFile', path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read ${path} (${flagsAndEnv(KAFKA_SETTINGS, key)}): ${(err as Error).message}`,
      {
        cause: err,
        hint: `point ${flagsAndEnv(KAFKA_SETTINGS, key)} at a readable PEM file`,
      },
    );
  }
}

function tlsOptions(s: KafkaSecuritySettings): ConnectionOptions {
  if ((s.kafkaCertFile === undefined) !== (s.kafkaKeyFile === undefined)) {
    throw new ConfigError('a Kafka client certificate needs both its certificate and its key', {
      hint: `set both ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaCertFile', 'kafkaKeyFile')}`,
    });
  }
  // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in an operator's environment cannot turn checks off.
  const options: ConnectionOptions = { rejectUnauthorized: true };
  if (s.kafkaCaFile !== undefined) options.ca = [readPem('kafkaCaFile', s.kafkaCaFile)];
  if (s.kafkaCertFile !== undefined && s.kafkaKeyFile !== undefined) {
    options.cert = readPem('kafkaCertFile', s.kafkaCertFile);
    options.key = readPem('kafkaKeyFile', s.kafkaKeyFile);
  }
  try {
    // Parses the PEM files now, so a wrong one is named here rather than failing deep in a connect.
    createSecureContext(options);
  } catch (err) {
    throw new ConfigError(`the Kafka TLS files cannot be used: ${(err as Error).message}`, {
      cause: err,
      hint: `check the PEM files in ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaCaFile', 'kafkaCertFile', 'kafkaKeyFile')}`,
    });
  }
  return options;
}

function saslOptions(s: KafkaSecuritySettings): SASLOptions {
  if (s.kafkaSaslUsername === undefined || s.kafkaSaslPassword === undefined) {
    throw new ConfigError(`${s.kafkaSecurityProtocol} needs a SASL user name and password`, {
      hint: `set ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaSaslUsername', 'kafkaSaslPassword')}`,
    });
  }
  const credentials = { username: s.kafkaSaslUsername, password: s.kafkaSaslPassword };
  switch (s.kafkaSaslMechanism) {
    case 'plain':
      return { mechanism: 'plain', ...credentials };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', ...credentials };
    default:
      return { mechanism: 'scram-sha-512', ...credentials };
  }
}

/**
 * kafkajs's options for the chosen protocol. Settings that the protocol would ignore are refused:
 * a CA file with PLAINTEXT means the operator believes the traffic is encrypted when it is not.
 */
export function kafkaSecurity(s: KafkaSecuritySettings): KafkaSecurity {
  const protocol = s.kafkaSecurityProtocol;
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const sasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const unusedFiles = (['kafkaCaFile', 'kafkaCertFile', 'kafkaKeyFile'] as const).filter(
    (key) => s[key] !== undefined,
  );
  if (!tls && unusedFiles.length > 0) {
    throw new ConfigError(
      `${flagsAndEnv(KAFKA_SETTINGS, ...unusedFiles)} need TLS, but the Kafka protocol is ${protocol}`,
      {
        hint: `set ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaSecurityProtocol')} to SSL or SASL_SSL, or unset the files`,
      },
    );
  }
  const unusedCredentials = (['kafkaSaslUsername', 'kafkaSaslPassword'] as const).filter(
    (key) => s[key] !== undefined,
  );
  if (!sasl && unusedCredentials.length > 0) {
    throw new ConfigError(
      `${flagsAndEnv(KAFKA_SETTINGS, ...unusedCredentials)} need SASL, but the Kafka protocol is ${protocol}`,
      {
        hint: `set ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaSecurityProtocol')} to SASL_SSL or SASL_PLAINTEXT, or unset the credentials`,
      },
    );
  }
  return {
    protocol,
    ...(tls ? { ssl: tlsOptions(s) } : {}),
    ...(sasl ? { sasl: saslOptions(s) } : {}),
  };
}

/** How a client connects, for doctor: "SASL_SSL, SCRAM-SHA-512 as syncctl, CA /etc/kafka-ca.pem". */
export function describeKafkaSecurity(security: KafkaSecurity): string {
  const parts: string[] = [security.protocol];
  const sasl = security.sasl as { mechanism: string; username?: string } | undefined;
  if (sasl) parts.push(`${sasl.mechanism.toUpperCase()} as ${sasl.username ?? '?'}`);
  if (security.ssl?.cert !== undefined) parts.push('client certificate');
  return parts.join(', ');
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isTlsFailure(err: unknown): boolean {
  const code = codeOf(err);
  if (code === undefined) return false;
  return (
    UNTRUSTED.has(code) ||
    EXPIRED.has(code) ||
    CLIENT_REFUSED.has(code) ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    /^ERR_SSL_/.test(code)
  );
}

function tlsHint(code: string | undefined): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the broker's certificate does not name the address connected to: use a name or address from its certificate in ${flagsAndEnv(GLOBAL_SETTINGS, 'brokers')}`;
  if (code !== undefined && UNTRUSTED.has(code))
    return `point ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaCaFile')} at the CA that signed the broker's certificate`;
  if (code !== undefined && EXPIRED.has(code))
    return "the broker's certificate must be renewed (or this machine's clock is wrong)";
  if (code !== undefined && CLIENT_REFUSED.has(code))
    return `the broker refused our client certificate: check ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaCertFile', 'kafkaKeyFile')}`;
  return `check that the broker's listener speaks TLS and ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaSecurityProtocol', 'kafkaCaFile')}`;
}

function tlsError(err: unknown, broker: string): KafkaTlsError {
  const code = codeOf(err);
  // OpenSSL's own message is a multi-line dump; its reason ("sslv3 alert bad certificate") says it.
  const reason = (err as { reason?: unknown }).reason;
  const text = (err as Error).message.replace(/^(Connection error|Failed to connect): /, '');
  const message =
    typeof reason === 'string' && reason !== ''
      ? reason
      : (/SSL routines:[^:]*:([^:\n]+)/.exec(text)?.[1] ?? text.split('\n')[0] ?? text);
  return new KafkaTlsError(
    `TLS handshake with the Kafka broker at ${broker} failed: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`,
    { cause: err, hint: tlsHint(code) },
  );
}

function chain(err: unknown): unknown[] {
  const seen: unknown[] = [];
  let current = err;
  for (let depth = 0; depth < 10 && current !== null && typeof current === 'object'; depth++) {
    seen.push(current);
    const e = current as { originalError?: unknown; cause?: unknown };
    current = e.originalError ?? e.cause;
  }
  return seen;
}

/**
 * A kafkajs failure that is a TLS or SASL problem, as the coded error that names the setting to fix;
 * undefined for anything else.
 */
export function securityFailure(
  err: unknown,
  brokers: string[],
  security?: KafkaSecurity,
): SyncError | undefined {
  for (const e of chain(err)) {
    if ((e as Error).name === 'KafkaJSSASLAuthenticationError') {
      const sasl = security?.sasl as { mechanism: string; username?: string } | undefined;
      const who = sasl ? ` (${sasl.mechanism.toUpperCase()}, user ${sasl.username ?? '?'})` : '';
      return new KafkaAuthError(
        `SASL authentication to Kafka at ${brokers.join(',')} failed${who}: ${(e as Error).message}`,
        {
          cause: err,
          hint: `check ${flagsAndEnv(KAFKA_SETTINGS, 'kafkaSaslUsername', 'kafkaSaslPassword', 'kafkaSaslMechanism')}`,
        },
      );
    }
    if (isTlsFailure(e)) {
      const broker = (e as { broker?: unknown }).broker;
      return tlsError(e, typeof broker === 'string' ? broker : brokers.join(','));
    }
  }
  return undefined;
}

/**
 * kafkajs's socket factory, plus a report of the first TLS failure: kafkajs retries a failed
 * handshake like a refused connection, so without this a wrong CA took the whole connect timeout
 * and then looked like an unreachable broker.
 */
export function tlsWatchingSocketFactory(onTlsFailure: (err: KafkaTlsError) => void): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    let socket: Socket;
    if (ssl) {
      socket = tlsConnect(
        { host, port, ...(isIP(host) ? {} : { servername: host }), ...(ssl as ConnectionOptions) },
        onConnect,
      );
      socket.on('error', (err) => {
        if (isTlsFailure(err)) onTlsFailure(tlsError(err, `${host}:${port}`));
      });
    } else {
      socket = netConnect({ host, port }, onConnect);
    }
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    return socket;
  };
}
