/**
 * Response size caps shared by every HTTP client: got (CRM, Analytics) and soap's axios (Inventory).
 * A body is counted while it streams in and cut off the moment it passes the cap, so a hostile or
 * broken service never makes syncctl buffer more than the cap (plus one network chunk). Bytes are
 * counted after decompression: a small gzip bomb is cut like a big body.
 */
import type { HandlerFunction, Progress } from 'got';
import { LimitExceededError } from '../errors.js';
import { redact } from '../redact.js';
import { whereToSet } from '../settings/index.js';

export interface BodyLimit {
  maxBytes: number;
  /** The setting that raises it (crmMaxResponseBytes …), for the message and the hint. */
  setting: string;
  /** What the body is, for the message: "the CRM answer", "a SOAP response". */
  what: string;
}

export function bodyTooLarge(limit: BodyLimit, where: string, seen?: number): LimitExceededError {
  const size = seen === undefined ? 'more than' : `at least ${seen} bytes, more than`;
  return new LimitExceededError(
    `${limit.what} ${where} is too large (${size} the ${limit.maxBytes}-byte limit); cut off while it streamed in`,
    {
      hint: `if such answers are legitimate raise ${whereToSet(limit.setting)}; a smaller page size also helps`,
      details: { limitBytes: limit.maxBytes, ...(seen === undefined ? {} : { seenBytes: seen }) },
    },
  );
}

/**
 * A got handler that cancels a request as soon as its body (or its announced Content-Length) passes
 * the cap, and rejects with LimitExceededError instead of got's CancelError. Not retried: the same
 * request would bring the same body.
 */
export function gotBodyLimit(limit: BodyLimit): HandlerFunction {
  return (options, next) => {
    const result = next(options);
    if (options.isStream) return result;
    const request = result as unknown as Promise<unknown> & {
      on(event: 'downloadProgress', listener: (progress: Progress) => void): unknown;
      cancel(): void;
    };
    let seen: number | undefined;
    request.on('downloadProgress', ({ transferred, total }) => {
      const size = Math.max(transferred, total ?? 0);
      if (seen === undefined && size > limit.maxBytes) {
        seen = size;
        request.cancel();
      }
    });
    return request.catch((err: unknown) => {
      if (seen !== undefined) {
        const url = options.url === undefined ? '' : `from ${redact(String(options.url))}`;
        throw bodyTooLarge(limit, url, seen);
      }
      throw err;
    }) as unknown as typeof result;
  };
}

/** The axios options (soap's HTTP client) that make it cut a body at the cap while streaming. */
export function axiosBodyLimit(limit: BodyLimit): { maxContentLength: number } {
  return { maxContentLength: limit.maxBytes };
}

/** Whether soap/axios failed because a body passed axiosBodyLimit's cap. */
export function isAxiosBodyLimit(err: unknown): boolean {
  return err instanceof Error && /^maxContentLength size of \d+ exceeded/.test(err.message);
}
