import { defineConfig } from 'vitest/config';

/** The durability suite: real processes killed and Redis servers restarted, one file at a time. */
export default defineConfig({
  test: {
    include: ['test/durability/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 60_000,
    // A private redis-server when nothing answers at REDIS_URL (see test/helpers/redis-global-setup.ts).
    globalSetup: ['test/helpers/redis-global-setup.ts'],
    setupFiles: ['test/helpers/redis-env-setup.ts'],
  },
});
