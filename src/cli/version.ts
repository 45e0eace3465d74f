import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version in syncctl's own package.json, found upwards from this module (src/cli in a checkout,
 * dist/src/cli once built) — not $npm_package_version, which is whatever package's npm script runs us.
 */
export function packageVersion(moduleUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'syncctl' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json at this level (or not readable): keep going up.
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
