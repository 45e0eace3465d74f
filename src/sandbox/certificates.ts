/**
 * A private CA and the certificates a local TLS broker and its clients need, made with openssl:
 * PEM files every client reads (kafkajs, kcat, Java), plus a PKCS#12 keystore for the broker.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { ensureDir } from '../paths.js';

export interface CertificateSet {
  dir: string;
  /** The CA certificate clients trust (--kafka-ca-file). */
  caFile: string;
  /** The broker's keystore (key, certificate and CA chain) and its password. */
  brokerKeystore: string;
  brokerKeystorePassword: string;
  /** A client certificate and key signed by the same CA, for listeners that require one (mTLS). */
  clientCertFile: string;
  clientKeyFile: string;
}

const DAYS = '825';
/** EC keys: generated in milliseconds, and every client here (Node, librdkafka, Java 17) speaks them. */
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[], what: string): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new SandboxError(`openssl could not ${what}: ${result.error?.message ?? result.stderr.trim()}`, {
      cause: result.error,
      hint: 'install openssl (Debian: apt-get install openssl)',
    });
  }
}

/** Issues a certificate for `cn` signed by the CA in `dir`, with the given extensions. */
function issue(dir: string, name: string, cn: string, extensions: string[]): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${extensions.join('\n')}\n`);
  openssl(['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], `make the ${name} key`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      join(dir, 'ca.pem'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-CAcreateserial',
      '-days',
      DAYS,
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    `sign the ${name} certificate`,
  );
  chmodSync(key, 0o600);
  return { cert, key };
}

/**
 * A CA, a broker certificate naming `hosts` (IP addresses and DNS names) and a client certificate,
 * in `dir`. Made once: an existing set is reused, so clients that trust it keep working.
 */
export function makeCertificates(
  dir: string,
  hosts: readonly string[] = ['127.0.0.1', 'localhost'],
): CertificateSet {
  ensureDir(dir, 'the sandbox certificate directory');
  const set: CertificateSet = {
    dir,
    caFile: join(dir, 'ca.pem'),
    brokerKeystore: join(dir, 'broker.p12'),
    brokerKeystorePassword: '',
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
  };
  const passwordFile = join(dir, 'broker.p12.password');
  if (existsSync(set.brokerKeystore) && existsSync(passwordFile)) {
    return { ...set, brokerKeystorePassword: readFileSync(passwordFile, 'utf8').trim() };
  }
  openssl(
    [
      'req',
      '-x509',
      ...KEY,
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      set.caFile,
      '-days',
      DAYS,
      '-subj',
      '/CN=syncctl sandbox CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    'make the CA',
  );
  chmodSync(join(dir, 'ca.key'), 0o600);
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const broker = issue(dir, 'broker', hosts[0] ?? 'localhost', [
    `subjectAltName=${san}`,
    'extendedKeyUsage=serverAuth',
  ]);
  issue(dir, 'client', 'syncctl-client', ['extendedKeyUsage=clientAuth']);
  const password = randomBytes(12).toString('hex');
  writeFileSync(passwordFile, password, { mode: 0o600 });
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      broker.cert,
      '-inkey',
      broker.key,
      '-certfile',
      set.caFile,
      '-name',
      'broker',
      '-passout',
      `file:${passwordFile}`,
      '-out',
      set.brokerKeystore,
    ],
    'make the broker keystore',
  );
  chmodSync(set.brokerKeystore, 0o600);
  return { ...set, brokerKeystorePassword: password };
}
