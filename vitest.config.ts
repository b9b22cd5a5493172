import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The durability suite kills processes and restarts Redis: it runs alone, see vitest.durability.config.ts.
    exclude: ['test/durability/**', 'node_modules/**'],
    // Integration tests start servers and share the machine's 2 cores; keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 60_000,
    // Type tests (*.test-d.ts: the package's public API shape) run through tsc alongside.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    hookTimeout: 60_000,
    // A private redis-server when nothing answers at REDIS_URL (see test/helpers/redis-global-setup.ts).
    globalSetup: ['test/helpers/redis-global-setup.ts'],
    setupFiles: ['test/helpers/redis-env-setup.ts'],
    // `vitest run --coverage` (part of `npm test`): src/ as this suite runs it in its own processes.
    // Code run in child processes (CLI commands, worker processes, the durability suite) is not
    // measured by v8 coverage here, so the figure understates what the tests exercise.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      reportOnFailure: true,
      // Floors a little under the figure measured on 2026-12-02 (see the README's Development section).
      thresholds: { statements: 80, branches: 74, functions: 80, lines: 82 },
    },
  },
});
