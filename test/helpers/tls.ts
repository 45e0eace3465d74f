/**
 * Certificates made with openssl at test time (nothing secret is committed): a CA, a server
 * certificate for 127.0.0.1 and localhost signed by it (and one for another host), a client certificate
 * signed by it, a client key encrypted with a passphrase, and a second CA nobody trusts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp.js';

export interface TestPki {
  dir: string;
  /** PEM paths. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** The client key again, encrypted with `passphrase`. */
  clientKeyEncryptedFile: string;
  passphrase: string;
  /** A server certificate signed by the CA for another host name (elsewhere.example) only. */
  otherHostCert: string;
  otherHostKey: string;
  /** A client certificate signed by a CA the servers do not trust. */
  strangerCertFile: string;
  strangerKeyFile: string;
  /** The PEM texts the fixture servers take. */
  ca: string;
  serverCert: string;
  serverKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=syncctl test ${name}`,
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, extensions: string): void {
  openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function createTestPki(): TestPki {
  const dir = tempDir('syncctl-pki-');
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(
    dir,
    'server',
    'ca',
    'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  makeLeaf(
    dir,
    'other-host',
    'ca',
    'basicConstraints=CA:FALSE\nsubjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n',
  );
  makeLeaf(dir, 'client', 'ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'stranger', 'other-ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  const passphrase = 'pki-Pass7Wd3secretKEY';
  openssl(dir, [
    'pkey',
    '-in',
    'client.key',
    '-aes256',
    '-passout',
    `pass:${passphrase}`,
    '-out',
    'client-encrypted.key',
  ]);
  const at = (name: string) => join(dir, name);
  return {
    dir,
    caFile: at('ca.pem'),
    serverCertFile: at('server.pem'),
    serverKeyFile: at('server.key'),
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client.key'),
    clientKeyEncryptedFile: at('client-encrypted.key'),
    passphrase,
    strangerCertFile: at('stranger.pem'),
    strangerKeyFile: at('stranger.key'),
    otherHostCert: readFileSync(at('other-host.pem'), 'utf8'),
    otherHostKey: readFileSync(at('other-host.key'), 'utf8'),
    ca: readFileSync(at('ca.pem'), 'utf8'),
    serverCert: readFileSync(at('server.pem'), 'utf8'),
    serverKey: readFileSync(at('server.key'), 'utf8'),
  };
}
