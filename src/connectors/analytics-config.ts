import { redact } from '../redact.js';
import { ANALYTICS_SETTINGS, resolveSettings, type SettingsSource } from '../settings/index.js';
import {
  checkConfig,
  configDefaults,
  configFromValues,
  definedOnly,
  settingErrors,
} from './source-settings.js';
import type { TlsFiles } from './tls.js';

/** The Analytics sink's settings, resolved and validated at the edge. */

export interface AnalyticsConfig {
  /** Base URL of the Analytics API, e.g. http://127.0.0.1:8080 (the /v1/… paths are appended). */
  url: string;
  token: string;
  /** Per attempt: a request that takes longer is abandoned and retried. */
  timeoutMs: number;
  /** Retries per request after the first attempt. */
  retries: number;
  /** Records per POST; larger deliveries are split into sub-batches. */
  batchSize: number;
  /** First back-off delay; doubles per retry, with jitter, up to backoffLimitMs. */
  backoffMs: number;
  backoffLimitMs: number;
  /** A Retry-After longer than this is not waited for: the delivery fails as temporary. */
  maxRetryAfterMs: number;
  /** Largest response body (default 64 MiB); a larger one is cut off while streaming (LimitExceededError). */
  maxResponseBytes?: number;
  /** HTTPS: a private CA, a client certificate (see tls.ts). */
  tls?: TlsFiles;
}

const DEFAULTS = configDefaults(ANALYTICS_SETTINGS) as Omit<AnalyticsConfig, 'url' | 'token'>;

const settingError = settingErrors('Analytics', ANALYTICS_SETTINGS);

/** Validates options at the edge; every message names the setting and how to set it. */
export function resolveAnalyticsConfig(input: Partial<AnalyticsConfig>): AnalyticsConfig {
  const config = { ...DEFAULTS, ...definedOnly(input) } as AnalyticsConfig;
  checkConfig(config as unknown as Record<string, unknown>, ANALYTICS_SETTINGS, settingError);
  if (!config.url) {
    throw settingError('url', 'is required (`syncctl sandbox env` prints it for the sandbox)');
  }
  let parsed: URL;
  try {
    parsed = new URL(config.url);
  } catch {
    throw settingError('url', `is not a valid URL: "${redact(config.url)}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw settingError('url', `must be http:// or https://, got "${parsed.protocol}"`);
  }
  if (!config.token) throw settingError('token', 'is required (the bearer token of the Analytics API)');
  return { ...config, url: parsed.toString() };
}

/** The Analytics configuration from flags > SYNCCTL_ANALYTICS_* environment > profile > defaults, validated. */
export function analyticsConfigFromSettings(
  settings: SettingsSource,
  flags: Readonly<Record<string, unknown>> = {},
): AnalyticsConfig {
  return resolveAnalyticsConfig(
    configFromValues(ANALYTICS_SETTINGS, resolveSettings(ANALYTICS_SETTINGS, settings, flags)),
  );
}
