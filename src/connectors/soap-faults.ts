/**
 * What a failed SOAP call (or WSDL download) was, for the Inventory source's retry loop and for the
 * operator: transient (5xx, 429, timeouts, connection errors, SOAP Server faults), malformed (not
 * valid XML), or a failure no retry can help (authentication, other Client faults, 4xx, a broken WSDL).
 */
import { SourceMalformedError, SourcePermanentError, SourceTransientError, SyncError } from '../errors.js';
import { isTransientErrorCode, isTransientStatus, parseRetryAfter } from './retry-policy.js';

/** What one failed attempt was, and whether another attempt may help. */
export interface Failure {
  kind: 'transient' | 'malformed' | 'auth' | 'rejected' | 'not-found';
  message: string;
  /** The server's Retry-After, in ms. */
  retryAfterMs?: number;
}

interface SoapFaultInfo {
  code: string;
  text: string;
  detail: string;
  status: number | undefined;
}

export function shorten(text: string, max = 300): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && '$value' in value) return textOf((value as { $value: unknown }).$value);
  return JSON.stringify(value);
}

/** The Fault of a SOAP 1.1 or 1.2 envelope the soap client parsed, if there is one. */
function faultOf(err: unknown): SoapFaultInfo | undefined {
  const e = err as { root?: { Envelope?: { Body?: { Fault?: unknown } } }; response?: { status?: number } };
  const fault = e?.root?.Envelope?.Body?.Fault as Record<string, unknown> | undefined;
  if (!fault || typeof fault !== 'object') return undefined;
  const status = e.response?.status;
  if ('faultcode' in fault || 'faultstring' in fault) {
    return {
      code: textOf(fault.faultcode),
      text: textOf(fault.faultstring),
      detail: textOf(fault.detail),
      status,
    };
  }
  const code = fault.Code as { Value?: unknown; Subcode?: { Value?: unknown } } | undefined;
  const sub = textOf(code?.Subcode?.Value);
  return {
    code: [textOf(code?.Value), sub].filter((s) => s !== '').join('/'),
    text: textOf((fault.Reason as { Text?: unknown } | undefined)?.Text),
    detail: textOf(fault.Detail),
    status,
  };
}

/** Sorts one failed SOAP call (or WSDL download) into what the operator and the retry loop need. */
export function classify(err: unknown): Failure {
  if (err instanceof SyncError) {
    if (err instanceof SourceMalformedError) return { kind: 'malformed', message: err.message };
    if (err instanceof SourcePermanentError) return { kind: 'rejected', message: err.message };
    return { kind: 'transient', message: err.message };
  }
  const fault = faultOf(err);
  if (fault) {
    const described = `SOAP Fault ${fault.code}: ${fault.text}${fault.detail ? ` (${shorten(fault.detail, 200)})` : ''}`;
    // SOAP 1.1 "soap:Client" / "SOAP-ENV:Client.Authentication", SOAP 1.2 "soap:Sender/…".
    const clientSide = /(^|:)(Client|Sender)(\b|$)/i.test(fault.code);
    const authLike =
      /FailedAuthentication|InvalidSecurity|FailedCheck|Authenticat|Unauthori[sz]ed/i.test(fault.code) ||
      fault.status === 401 ||
      fault.status === 403 ||
      (clientSide &&
        /authenticat|credential|password|unauthori[sz]ed|security token/i.test(
          `${fault.text} ${fault.detail}`,
        ));
    if (authLike) return { kind: 'auth', message: described };
    if (clientSide) return { kind: 'rejected', message: described };
    return { kind: 'transient', message: described };
  }
  const e = err as {
    Fault?: { faultstring?: unknown; detail?: unknown };
    response?: { status?: number; headers?: Record<string, unknown> };
    code?: unknown;
    message?: unknown;
  };
  const status = e?.response?.status;
  if (typeof status === 'number' && status >= 400) {
    const retryAfterMs = parseRetryAfter(e.response?.headers?.['retry-after']);
    const type = String(e.response?.headers?.['content-type'] ?? 'no content type').split(';')[0];
    const what = `HTTP ${status} (${type})`;
    if (status === 401 || status === 403) return { kind: 'auth', message: what };
    if (status === 404 || status === 410) return { kind: 'not-found', message: what };
    if (isTransientStatus(status)) {
      return { kind: 'transient', message: what, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    return { kind: 'rejected', message: what };
  }
  if (e && typeof e === 'object' && e.Fault && !(err instanceof Error)) {
    // The soap client's XML parser throws a plain {Fault} object for a 2xx body it cannot parse (for
    // an HTTP error status the status above is what matters: a 429 or 502 page is not SOAP anyway).
    return {
      kind: 'malformed',
      message: `the response is not valid XML (${shorten(textOf(e.Fault.detail) || textOf(e.Fault.faultstring), 200)})`,
    };
  }
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') {
    return { kind: 'transient', message: `timed out (${code})` };
  }
  if (isTransientErrorCode(code)) return { kind: 'transient', message: `${code}: ${message}` };
  if (/Cannot parse response|Unexpected|Unclosed|Invalid|non-whitespace|Text data outside/i.test(message)) {
    return {
      kind: 'malformed',
      message: `the response is not a readable SOAP envelope (${shorten(message, 200)})`,
    };
  }
  return { kind: 'transient', message: shorten(message) };
}

/** The last failure of a call after the retry loop gave up (or saw a failure not worth retrying). */
export class RetriesExhausted extends Error {
  constructor(
    readonly failure: Failure,
    readonly attempts: number,
  ) {
    super(failure.message);
  }
}

/** WSDL download errors come as plain Errors ("Invalid WSDL URL … Code: 404"); give them a shape classify reads. */
export function wsdlFailure(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const status = /Code:\s*(\d{3})/.exec(err.message);
  if (status) {
    const code = Number(status[1]);
    const what = `HTTP ${code} for the WSDL`;
    if (isTransientStatus(code)) return new SourceTransientError(what);
    return new SourcePermanentError(what);
  }
  const code = (err as { code?: unknown }).code;
  if (isTransientErrorCode(code)) return err;
  // Anything else is a document the soap package could not read as a WSDL.
  return new SourcePermanentError(`not a usable WSDL document (${shorten(err.message, 200)})`);
}
