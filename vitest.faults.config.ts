import { defineConfig } from 'vitest/config';

// `npm run test:faults`: long scenarios that SIGKILL syncctl and break its peers, one at a time so
// kill timing and throughput are not distorted by another scenario on the same 2 cores.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.faults.ts'],
    globalSetup: ['test/faults/global-setup.ts'],
    setupFiles: ['test/setup-temp.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    maxWorkers: 1,
    pool: 'forks',
  },
});
