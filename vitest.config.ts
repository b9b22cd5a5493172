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
  },
});
