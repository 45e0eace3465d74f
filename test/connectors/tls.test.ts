import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import got from 'got';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientTls } from '../../src/connectors/tls.js';
import { ConfigError, TlsError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

async function serve(key: string, cert: string): Promise<string> {
  const server = createServer({ key, cert }, (_req, res) => res.end('ok'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function failure(url: string, tls: ClientTls): Promise<unknown> {
  try {
    await got(url, { https: tls.got, retry: { limit: 0 } });
  } catch (err) {
    return err;
  }
  throw new Error('the request succeeded');
}

describe('ClientTls: loading the settings', () => {
  it("changes nothing without settings; a CA file is added to Node's list, or alone with caOnly", () => {
    expect(new ClientTls('crm').got).toEqual({});
    const added = new ClientTls('crm', { caFile: pki.caFile });
    expect(added.got.certificateAuthority).toHaveLength(rootCertificates.length + 1);
    const only = new ClientTls('crm', { caFile: pki.caFile, caOnly: true });
    expect(only.got.certificateAuthority).toEqual([pki.ca]);
    expect(only.agent.ca).toEqual([pki.ca]);
  });

  it('refuses incomplete or unusable settings with a config error naming the setting', () => {
    const refused = (files: ConstructorParameters<typeof ClientTls>[1], message: RegExp) => {
      let error: unknown;
      try {
        new ClientTls('inventory', files);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
    };
    refused({ caOnly: true }, /--inventory-ca-only .* needs --inventory-ca-file/);
    refused({ certFile: pki.clientCertFile }, /needs both --inventory-cert-file .*--inventory-key-file/);
    refused({ keyPassphrase: 'x' }, /--inventory-key-passphrase .* is set without --inventory-key-file/);
    refused({ caFile: join(tempDir('syncctl-tls-'), 'none.pem') }, /none\.pem: no such file \(ENOENT\)/);
    refused({ caFile: pki.clientKeyFile }, /is not a PEM file of the expected kind/);
    refused(
      { certFile: pki.clientCertFile, keyFile: pki.clientKeyEncryptedFile, keyPassphrase: 'wrong-one' },
      /cannot decrypt .*client-encrypted\.key \(wrong or missing --inventory-key-passphrase/,
    );
    refused(
      { certFile: pki.clientCertFile, keyFile: pki.strangerKeyFile },
      /stranger\.key is not the key of .*client\.pem/,
    );
    const ok = new ClientTls('inventory', {
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyEncryptedFile,
      keyPassphrase: pki.passphrase,
    });
    expect(ok.hasClientCert).toBe(true);
  });
});

describe('ClientTls.explain: certificate failures as E_TLS', () => {
  it('an untrusted server certificate names the system, the host and --<system>-ca-file', async () => {
    const url = await serve(pki.serverKey, pki.serverCert);
    const tls = new ClientTls('crm');
    const error = tls.explain(await failure(url, tls), url, true);
    expect(error).toBeInstanceOf(TlsError);
    expect(error).toMatchObject({ code: 'E_TLS', retryable: false, exitCode: 2 });
    expect(error?.message).toMatch(
      /^TLS: the CRM at 127\.0\.0\.1:\d+ presented a certificate this machine does not trust/,
    );
    expect(error?.hint).toMatch(/--crm-ca-file \/ SYNCCTL_CRM_CA_FILE/);
  });

  it('a certificate for another host name says so', async () => {
    const url = await serve(pki.otherHostKey, pki.otherHostCert);
    const tls = new ClientTls('analytics', { caFile: pki.caFile });
    const error = tls.explain(await failure(url, tls), url, true);
    expect(error?.message).toMatch(
      /the certificate of Analytics at 127\.0\.0\.1:\d+ is not valid for the host name "127\.0\.0\.1"/,
    );
    expect(error?.hint).toMatch(/--analytics-url/);
  });

  it('an expired certificate, and a reset after the handshake only when a client certificate is configured and retries are spent', () => {
    const url = 'https://inventory.example:8443/soap';
    const plain = new ClientTls('inventory');
    const expired = plain.explain(
      { code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' },
      url,
      false,
    );
    expect(expired?.message).toMatch(
      /the certificate of the Inventory service at inventory\.example:8443 has expired/,
    );
    const reset = { code: 'ECONNRESET', message: 'socket hang up', timings: { secureConnect: 12 } };
    expect(plain.explain(reset, url, true)).toBeUndefined();
    const withCert = new ClientTls('inventory', { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });
    expect(withCert.explain(reset, url, false)).toBeUndefined();
    expect(withCert.explain({ ...reset, timings: {} }, url, true)).toBeUndefined();
    expect(withCert.explain(reset, url, true)?.message).toMatch(/may have refused the client certificate/);
    expect(withCert.explain(reset, 'http://inventory.example/soap', true)).toBeUndefined();
  });
});
