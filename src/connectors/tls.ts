/**
 * HTTPS to the CRM, Inventory and Analytics: the per-system certificate settings
 * (--{crm,inventory,analytics}-ca-file, -ca-only, -cert-file, -key-file, -key-passphrase) loaded once
 * into what got and Node's https agents take, and certificate failures turned into errors that name
 * the system, the host and the setting to fix. Verification is never turned off.
 */
import { readFileSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { OptionsInit } from 'got';
import { ConfigError, TlsError } from '../errors.js';
import { redact } from '../redact.js';
import {
  ANALYTICS_SETTINGS,
  CRM_SETTINGS,
  INVENTORY_SETTINGS,
  flagsAndEnv,
  type SettingGroup,
} from '../settings/index.js';

export type TlsSystem = 'crm' | 'inventory' | 'analytics';

/** The `tls` part of a connector's config, as the settings fill it (field `tls.*`). */
export interface TlsFiles {
  caFile?: string;
  caOnly?: boolean;
  certFile?: string;
  keyFile?: string;
  keyPassphrase?: string;
}

const SYSTEM_NAMES: Record<TlsSystem, string> = {
  crm: 'the CRM',
  inventory: 'the Inventory service',
  analytics: 'Analytics',
};

const GROUPS: Record<TlsSystem, SettingGroup> = {
  crm: CRM_SETTINGS,
  inventory: INVENTORY_SETTINGS,
  analytics: ANALYTICS_SETTINGS,
};

type TlsKey = 'CaFile' | 'CaOnly' | 'CertFile' | 'KeyFile' | 'KeyPassphrase';

/** "--crm-ca-file / SYNCCTL_CRM_CA_FILE" for a message (flagsAndEnv throws for a key the group lacks). */
function setting(system: TlsSystem, ...names: TlsKey[]): string {
  return flagsAndEnv(GROUPS[system], ...names.map((name) => `${system}${name}`));
}

function readPem(system: TlsSystem, name: TlsKey, path: string, label: RegExp): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot be read';
    throw new ConfigError(`${setting(system, name)}: ${path}: ${why} (${code})`, {
      hint: `give the path of a PEM file readable by this user`,
    });
  }
  if (!label.test(text)) {
    throw new ConfigError(`${setting(system, name)}: ${path} is not a PEM file of the expected kind`, {
      hint: `expected a "-----BEGIN ${label.source.includes('KEY') ? 'PRIVATE KEY' : 'CERTIFICATE'}-----" block (convert DER or PKCS#12 with openssl)`,
    });
  }
  return text;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** What one system's HTTPS connections use. */
export class ClientTls {
  /** For got's `https` option (CRM, Analytics). */
  readonly got: NonNullable<OptionsInit['https']>;
  /** For a node:https Agent (the SOAP client, which speaks through axios). */
  readonly agent: AgentOptions;
  readonly hasClientCert: boolean;

  constructor(
    readonly system: TlsSystem,
    files: TlsFiles = {},
  ) {
    const { caFile, caOnly = false, certFile, keyFile, keyPassphrase } = files;
    if (caOnly && !caFile)
      throw new ConfigError(`${setting(system, 'CaOnly')} needs ${setting(system, 'CaFile')}`, {
        hint: 'name the only CA to trust',
      });
    if ((certFile === undefined) !== (keyFile === undefined))
      throw new ConfigError(`a client certificate needs both ${setting(system, 'CertFile', 'KeyFile')}`);
    if (keyPassphrase !== undefined && keyFile === undefined)
      throw new ConfigError(
        `${setting(system, 'KeyPassphrase')} is set without ${setting(system, 'KeyFile')}`,
      );

    const extra = caFile === undefined ? undefined : readPem(system, 'CaFile', caFile, CERTIFICATE);
    // Node's `ca` replaces its own list: adding a private CA means passing both.
    const ca = extra === undefined ? undefined : caOnly ? [extra] : [...rootCertificates, extra];
    const cert = certFile === undefined ? undefined : readPem(system, 'CertFile', certFile, CERTIFICATE);
    const key = keyFile === undefined ? undefined : readPem(system, 'KeyFile', keyFile, PRIVATE_KEY);
    const passphrase = keyPassphrase === '' ? undefined : keyPassphrase;
    this.hasClientCert = cert !== undefined;
    // A wrong passphrase or a key that does not match the certificate fails here, before any request,
    // instead of as an obscure OpenSSL error on the first connection.
    if (cert !== undefined) {
      try {
        createSecureContext({ cert, key, passphrase });
      } catch (err) {
        const text = (err as Error).message;
        const what = /bad decrypt|bad password|passphrase|decrypt/i.test(text)
          ? `cannot decrypt ${keyFile ?? ''} (wrong or missing ${setting(system, 'KeyPassphrase')})`
          : /key values mismatch/i.test(text)
            ? `${keyFile ?? ''} is not the key of ${certFile ?? ''}`
            : `cannot use ${certFile ?? ''} with ${keyFile ?? ''}: ${redact(text)}`;
        throw new ConfigError(`${SYSTEM_NAMES[system]} client certificate: ${what}`, {
          hint: `check ${setting(system, 'CertFile', 'KeyFile', 'KeyPassphrase')}`,
        });
      }
    }
    this.got = {
      ...(ca === undefined ? {} : { certificateAuthority: ca }),
      ...(cert === undefined ? {} : { certificate: cert, key, passphrase }),
    };
    this.agent = {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert, key, passphrase }),
    };
  }

  /**
   * The TlsError a failed request stands for, if it failed on certificate grounds. `final` says the
   * retries are spent: only then is a connection reset right after the handshake blamed on the client
   * certificate — under TLS 1.3 the server checks it after the client considers the handshake done,
   * so a refused certificate often shows up as a reset rather than as an alert.
   */
  explain(err: unknown, url: string, final: boolean): TlsError | undefined {
    const e = err as { code?: unknown; message?: unknown; timings?: { secureConnect?: number } };
    const code = typeof e?.code === 'string' ? e.code : undefined;
    if (code === undefined) return undefined;
    let host: string;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'https:') return undefined;
      host = parsed.host;
    } catch {
      return undefined;
    }
    const name = SYSTEM_NAMES[this.system];
    const said = typeof e.message === 'string' ? ` (${code}: ${shortReason(e.message)})` : ` (${code})`;
    const at = `${name} at ${host}`;
    if (UNTRUSTED.has(code)) {
      return new TlsError(`TLS: ${at} presented a certificate this machine does not trust${said}`, {
        hint: `give the CA that signed it with ${setting(this.system, 'CaFile')}; syncctl never turns verification off`,
        details: { system: this.system, host, tlsCode: code },
      });
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new TlsError(
        `TLS: the certificate of ${at} is not valid for the host name "${hostnameOf(host)}"${said}`,
        {
          hint: `use a host name the certificate names in the ${name} URL (${urlSetting(this.system)}), or have its certificate reissued`,
          details: { system: this.system, host, tlsCode: code },
        },
      );
    }
    if (EXPIRED.has(code)) {
      return new TlsError(`TLS: the certificate of ${at} has expired or is not valid yet${said}`, {
        hint: `the server's certificate must be renewed (or this machine's clock is wrong); ${setting(this.system, 'CaFile')} cannot fix this`,
        details: { system: this.system, host, tlsCode: code },
      });
    }
    if (CLIENT_REFUSED.has(code)) {
      const fix = this.hasClientCert
        ? `${name} does not accept the client certificate: check ${setting(this.system, 'CertFile', 'KeyFile')} (signed by a CA it trusts, not expired)`
        : `${name} asks for a client certificate: give one with ${setting(this.system, 'CertFile', 'KeyFile')}`;
      return new TlsError(`TLS: ${at} refused the connection's client certificate${said}`, {
        hint: fix,
        details: { system: this.system, host, tlsCode: code },
      });
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') {
      return new TlsError(`TLS: ${at} did not answer in TLS${said}`, {
        hint: `if the service speaks plain HTTP, use an http:// URL (${urlSetting(this.system)})`,
        details: { system: this.system, host, tlsCode: code },
      });
    }
    const afterHandshake = e.timings === undefined || e.timings.secureConnect !== undefined;
    if (final && code === 'ECONNRESET' && this.hasClientCert && afterHandshake) {
      return new TlsError(
        `TLS: ${at} closed the connection right after the handshake (${code}); it may have refused the client certificate`,
        {
          hint: `check that ${setting(this.system, 'CertFile')} is signed by a CA ${name} trusts and has not expired`,
          details: { system: this.system, host, tlsCode: code },
        },
      );
    }
    return undefined;
  }
}

/** Chain problems: the server's certificate does not lead to a CA we trust. */
export const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);

export const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** Alerts a server sends when it wants, or does not accept, our client certificate. */
export const CLIENT_REFUSED = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

function urlSetting(system: TlsSystem): string {
  return flagsAndEnv(GROUPS[system], system === 'inventory' ? 'inventoryWsdl' : `${system}Url`);
}

function hostnameOf(host: string): string {
  return host.replace(/:\d+$/, '');
}

/** OpenSSL's own text ("…:ssl3_read_bytes:tlsv13 alert certificate required:../deps/…") cut to its reason. */
function shortReason(message: string): string {
  const reason = /:([^:]*alert[^:]*):/i.exec(message)?.[1];
  return (reason ?? message).trim().slice(0, 160);
}
