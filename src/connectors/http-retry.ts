/**
 * What counts as transient for our HTTP connectors (got's retry options): got's own defaults plus a
 * 200 whose body could not be parsed, which a proxy or a cut connection produces and a re-request fixes.
 * 413 is not here: the Analytics sink answers it by splitting the batch.
 */
export const RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504, 521, 522, 524];

export const RETRY_ERROR_CODES = [
  'ETIMEDOUT',
  'ECONNRESET',
  'EADDRINUSE',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ERR_BODY_PARSE_FAILURE',
];
