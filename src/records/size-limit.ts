import { flagName } from '../settings/define.js';

/**
 * --max-record-bytes: one record (its envelope's JSON, in UTF-8 bytes) larger than this is kept
 * aside — reject file in fetch and publish, dead-letter topic in consume — instead of travelling on.
 */
export function recordSizeProblem(bytes: number, maxRecordBytes: number | undefined): string | undefined {
  if (maxRecordBytes === undefined || bytes <= maxRecordBytes) return undefined;
  return `record too large: ${bytes} bytes, over the ${maxRecordBytes}-byte limit (${flagName('maxRecordBytes')})`;
}
