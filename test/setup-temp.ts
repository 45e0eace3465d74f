import { rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { createdTempDirs } from './helpers/temp.js';

// Registered before each file's own hooks, so it runs after them (hooks run as a stack) and a
// file's afterAll can still stop a broker or read its files before they go.
afterAll(() => {
  for (const dir of createdTempDirs) rmSync(dir, { recursive: true, force: true });
  createdTempDirs.clear();
});
