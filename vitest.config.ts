import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The durability suite kills processes and restarts Redis: it runs alone, see vitest.durability.config.ts.
    exclude: ['test/durability/**', 'node_modules/**'],
    // Integration tests start servers and share the machine's 2 cores; keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A private redis-server when nothing answers at REDIS_URL (see test/helpers/redis-global-setup.ts).
    globalSetup: ['test/helpers/redis-global-setup.ts'],
    setupFiles: ['test/helpers/redis-env-setup.ts'],
  },
});
