/**
 * The Inventory source's configuration: built, defaulted and validated from the same definitions
 * that make its flags, SYNCCTL_INVENTORY_* variables and profile keys (settings/sources.ts).
 */
import { redact } from '../redact.js';
import { INVENTORY_SETTINGS, resolveSettings, type SettingsSource } from '../settings/index.js';
import type { InventoryFieldPaths, MappingSpec } from '../mapping/index.js';
import type { TlsFiles } from './tls.js';
import {
  checkConfig,
  configDefaults,
  configFromValues,
  definedOnly,
  settingErrors,
} from './source-settings.js';

/** Element names of the product's fields: the mapping's shorthands (see src/mapping/sources.ts). */
export type InventoryFieldMap = InventoryFieldPaths;

/** Element names of the listing request, for services that spell them differently. */
export interface InventoryRequestMap {
  pageToken: string;
  pageSize: string;
  /** '' when the service cannot filter by time (then only full runs). */
  modifiedSince: string;
  /** '' when the service has no "changed until" filter (then a run lists up to now). */
  modifiedUntil: string;
}

export interface InventorySourceConfig {
  /** URL of the WSDL, e.g. http://inventory.example.com/inventory?wsdl. */
  wsdlUrl: string;
  /** WS-Security UsernameToken (PasswordText); '' sends no security header. */
  user: string;
  password: string;
  /** Overrides the WSDL's soap:address ('' = use the WSDL's). */
  endpoint: string;
  /** The listing operation. */
  operation: string;
  /** Dot path to the products in the operation's result ('products.product'). */
  recordsPath: string;
  /** Dot path to the next page token in the result. */
  nextTokenPath: string;
  request: InventoryRequestMap;
  pageSize: number;
  fields: InventoryFieldMap;
  /** The `inventoryMapping` setting: a JSON file of JSONata expressions, or the JSON itself; '' = none. */
  mapping: string;
  /** A mapping given in code; takes the place of `mapping`. */
  mappingSpec?: MappingSpec;
  /** Deadline of every SOAP call and of the WSDL download. */
  timeoutMs: number;
  /** Retries per call for transient failures (so at most retries + 1 attempts). */
  retries: number;
  /** First backoff delay; doubles per retry up to backoffLimitMs, with jitter. */
  backoffBaseMs: number;
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the call fails as transient instead. */
  maxRetryAfterMs: number;
  /** Exact repeats (same id and content) within one run are dropped via an LRU of this many ids; 0 = off. */
  dedupeWindow: number;
  /** Largest response body; a larger one is cut off while streaming (LimitExceededError). */
  maxResponseBytes: number;
  /** HTTPS: a private CA, a client certificate (see tls.ts). */
  tls?: TlsFiles;
}

export type InventorySourceInput = Partial<Omit<InventorySourceConfig, 'fields' | 'request'>> & {
  fields?: Partial<InventoryFieldMap>;
  request?: Partial<InventoryRequestMap>;
};

const DEFAULTS = configDefaults(INVENTORY_SETTINGS) as unknown as InventorySourceConfig;

const fieldError = settingErrors('Inventory', INVENTORY_SETTINGS);

function checkHttpUrl(value: string, field: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fieldError(field, `is not a URL: "${redact(value)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw fieldError(field, 'must be an http(s) URL');
}

/** Validates options at the edge; every message names the setting and how to set it. */
export function resolveInventoryConfig(input: InventorySourceInput): InventorySourceConfig {
  const config = {
    ...DEFAULTS,
    ...definedOnly(input),
    request: { ...DEFAULTS.request, ...definedOnly(input.request) },
    fields: { ...DEFAULTS.fields, ...definedOnly(input.fields) },
  } as InventorySourceConfig;
  checkConfig(config as unknown as Record<string, unknown>, INVENTORY_SETTINGS, fieldError);

  if (!config.wsdlUrl) {
    throw fieldError(
      'wsdlUrl',
      'is required (the Inventory WSDL URL, e.g. http://inventory.example.com/inventory?wsdl)',
    );
  }
  checkHttpUrl(config.wsdlUrl, 'wsdlUrl');
  if (config.endpoint !== '') checkHttpUrl(config.endpoint, 'endpoint');
  if ((config.user === '') !== (config.password === '')) {
    throw fieldError(
      config.user === '' ? 'user' : 'password',
      'is required when the other credential is set',
    );
  }
  return config;
}

/** The Inventory configuration from flags > SYNCCTL_INVENTORY_* environment > profile > defaults, validated. */
export function inventoryConfigFromSettings(
  settings: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): InventorySourceConfig {
  return resolveInventoryConfig(
    configFromValues(INVENTORY_SETTINGS, resolveSettings(INVENTORY_SETTINGS, settings, flags)),
  );
}
