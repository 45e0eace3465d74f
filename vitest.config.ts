import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-temp.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests share one real broker; files run in parallel but each uses its own topics and groups.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
