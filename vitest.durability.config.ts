import { defineConfig } from 'vitest/config';

/** The durability suite: real processes killed and Redis servers restarted, one file at a time. */
export default defineConfig({
  test: {
    include: ['test/durability/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
