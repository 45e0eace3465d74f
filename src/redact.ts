/** Secrets never reach logs, errors, DLQ headers or CSV: scrub the shapes they take in text. */
const PATTERNS: [RegExp, string][] = [
  [/(authorization:\s*bearer\s+)[^\s"',]+/gi, '$1***'],
  [/(bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi, '$1***'],
  // A hint such as "check the token: --analytics-token, …" names a flag, not a value: leave it readable.
  [/((?:token|password|passwd|secret|api[_-]?key)["']?\s*[=:]\s*["']?)(?!--[a-z])[^\s"'&,]+/gi, '$1***'],
  [/(\/\/[^:/@\s]+:)[^@/\s]+@/g, '$1***@'],
];

/** Values of the secret settings this process resolved (see settings/resolve.ts): masked wherever they appear. */
const known = new Set<string>();

/** Shorter values would mask ordinary words; such tokens are caught by the patterns above if at all. */
const MIN_SECRET_LENGTH = 4;

export function addSecret(value: string): void {
  if (value.length >= MIN_SECRET_LENGTH) known.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join('***');
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
