/** Secrets never reach logs, errors, DLQ headers or CSV: scrub the shapes they take in text. */
const PATTERNS: [RegExp, string][] = [
  [/(authorization:\s*bearer\s+)[^\s"',]+/gi, '$1***'],
  [/(bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi, '$1***'],
  [/((?:token|password|passwd|secret|api[_-]?key)["']?\s*[=:]\s*["']?)[^\s"'&,]+/gi, '$1***'],
  [/(\/\/[^:/@\s]+:)[^@/\s]+@/g, '$1***@'],
];

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
