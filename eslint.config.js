import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SLEEP_MESSAGE =
  'No bare sleeps in tests: wait for an event with a deadline, or poll with vi.waitFor / expect.poll. ' +
  'Where time itself must pass (a rate window, a kill moment), add an eslint-disable comment giving the reason.';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'bench/**', 'coverage/**', 'test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules (floating promises, misused promises, awaiting non-promises, ...) for the
    // TypeScript of every tsconfig.json project: src, workers, scripts, test and the root configs.
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // On in the preset; named so that turning the preset off cannot drop it silently.
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (expect.any, expect.stringContaining, ...) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Await-free async generators stand in for byte streams, and async doubles for async interfaces.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // A user's project checked against the installed package (test/package/pack.test.ts): its own
    // tsconfig, outside ours, so no type information here; and plain JS has none either.
    files: ['test/package/consumer/**', '**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Tests wait for events or poll with a deadline; a bare sleep makes them slow when the machine
    // is fast and flaky (or vacuous, for a negative check) when it is slow.
    files: ['test/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['timers/promises', 'node:timers/promises'].map((name) => ({
            name,
            importNames: ['setTimeout', 'scheduler'],
            message: SLEEP_MESSAGE,
          })),
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          // new Promise((resolve) => setTimeout(resolve, ms)), in any spelling.
          selector:
            "NewExpression[callee.name='Promise'] CallExpression[callee.name='setTimeout'][arguments.0.type='Identifier']",
          message: SLEEP_MESSAGE,
        },
        {
          selector: 'CallExpression[callee.name=/^(sleep|delay|pause|wait)$/]',
          message: SLEEP_MESSAGE,
        },
        {
          selector:
            "CallExpression[callee.property.name='scheduler'], MemberExpression[object.name='scheduler'][property.name='wait']",
          message: SLEEP_MESSAGE,
        },
      ],
    },
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
