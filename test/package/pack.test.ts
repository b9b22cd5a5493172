import { execFile } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { deletePrefix, REDIS_URL, uniquePrefix } from '../helpers/runtime.js';

/**
 * The package as a user gets it: `npm pack` (which runs `prepare`, the build) on a copy of this
 * tree, the tarball installed with `npm install` into a fresh project (its dependencies from the
 * registry, as for anyone), and there a TypeScript script (checked by `tsc` against the installed
 * types) and a JavaScript one run a batch against the emulator from the installed package, and the
 * installed bin answers --help. Slow (the install), so one file with generous deadlines.
 */

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./consumer/', import.meta.url));
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const MINUTE = 60_000;

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

/** Runs a command to completion; rejects with its output when it fails. */
function run(
  file: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 5 * MINUTE,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * The environment without what an outer `npm test` sets (npm_config_*, npm_lifecycle_*): the
 * nested npm must behave as a user's would.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return {
    ...env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...extra,
  };
}

const PROMPTS = Array.from({ length: 12 }, (_, i) =>
  JSON.stringify({
    custom_id: `q-${i}`,
    params: {
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: `Say something about the number ${i}.` }],
    },
  }),
).join('\n');

const devDependencies = Object.keys(
  (
    JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    }
  ).devDependencies,
);

let work: string;
let app: string;
let packed: Packed;
const prefixes: string[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'claude-batch-pack-'));
  // Pack a copy, so the build `npm pack` runs does not replace this tree's dist/ under other tests.
  const tree = join(work, 'tree');
  const skip = new Set(['node_modules', '.git', 'dist', 'test-output', 'coverage', '.demo']);
  cpSync(REPO, tree, {
    recursive: true,
    filter: (src) => !skip.has(basename(src)) || relative(REPO, src).includes('/'),
  });
  symlinkSync(join(REPO, 'node_modules'), join(tree, 'node_modules'));
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], tree, cleanEnv());
  // npm prints the build's output before the JSON.
  const json = pack.stdout.slice(pack.stdout.indexOf('[\n'));
  packed = (JSON.parse(json) as Packed[])[0]!;
  console.log(
    `package: ${packed.filename}, ${(packed.size / 1024).toFixed(0)} KiB packed, ` +
      `${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${packed.files.length} files`,
  );

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'my-batches', version: '1.0.0', private: true, type: 'module' }),
  );
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed.filename)],
    app,
    cleanEnv(),
    10 * MINUTE,
  );
  for (const name of ['submit.ts', 'submit.mjs']) copyFileSync(join(CONSUMER, name), join(app, name));
  // The user's own TypeScript setup; @types/node from this repository rather than a download.
  const tsconfig = JSON.parse(readFileSync(join(CONSUMER, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: Record<string, unknown>;
    files: string[];
  };
  tsconfig.compilerOptions['typeRoots'] = [join(REPO, 'node_modules/@types')];
  // The README's script for users, checked and run like theirs.
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(
    readme.slice(readme.indexOf('\n## From your own project')),
  )?.[1];
  if (!example) throw new Error('README: no ```ts block under "From your own project"');
  writeFileSync(join(app, 'readme-example.ts'), example);
  tsconfig.files.push('readme-example.ts');
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  writeFileSync(join(app, 'prompts.jsonl'), `${PROMPTS}\n`);
}, 15 * MINUTE);

afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(prefix);
  if (work) rmSync(work, { recursive: true, force: true });
});

// Each step is slow on a loaded machine (tsc twice, processes that load the whole package).
describe('the packed package', { timeout: 5 * MINUTE }, () => {
  it('holds the compiled code, its types, the bin and the README: no sources, tests, benchmarks, fixtures or maps', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain('package.json');
    expect(paths).toContain('README.md');
    expect(paths).toContain('bin/claude-batch.js');
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('dist/index.d.ts');
    expect(paths).toContain('dist/cli/main.js');
    const stray = paths.filter(
      (p) => !/^(package\.json|README\.md|bin\/claude-batch\.js|dist\/.*\.(js|d\.ts)|dist\/\.built)$/.test(p),
    );
    expect(stray).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(test|tests|bench|fixtures|devtools|src)\//.test(p))).toEqual([]);
    expect(paths.filter((p) => p.endsWith('.map'))).toEqual([]);
    for (const file of paths.filter((p) => p.endsWith('.js'))) {
      expect(readFileSync(join(app, 'node_modules/claude-batch', file), 'utf8')).not.toMatch(
        /sourceMappingURL/,
      );
    }
  });

  it('installs with its runtime dependencies and none of the development ones', () => {
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/.package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    const names = Object.keys(installed.packages).map((p) => p.replace(/^.*node_modules\//, ''));
    expect(names).toContain('bullmq');
    expect(names).toContain('@anthropic-ai/sdk');
    expect(devDependencies.filter((name) => names.includes(name))).toEqual([]);
  });

  it("type-checks the TypeScript scripts (ours and the README's) against the installed types", async () => {
    await run(process.execPath, [TSC, '--noEmit', '-p', '.'], app, cleanEnv());
    // Then compiles them for the next tests: Node 20 runs no TypeScript.
    await run(process.execPath, [TSC, '-p', '.'], app, cleanEnv());
  });

  it('runs the TypeScript script: submit, work, events, results, and an exit with only the runtime closed', async () => {
    const prefix = uniquePrefix('pack-ts');
    prefixes.push(prefix);
    const env = cleanEnv({
      REDIS_URL,
      CLAUDE_BATCH_PREFIX: prefix,
      ANTHROPIC_API_KEY: 'sk-test-key-for-emulator-0000',
      CLAUDE_BATCH_LOG_LEVEL: 'warn',
    });
    // The script closes the runtime but not the worker: the process must still exit on its own.
    const { stdout } = await run(
      process.execPath,
      ['build/submit.js', 'prompts.jsonl', 'results-ts.jsonl'],
      app,
      env,
    );
    const summary = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(summary).toMatchObject({
      total: 12,
      lines: 12,
      counts: { succeeded: 12, errored: 0 },
      first: 'progress',
      last: 'ended',
    });
    const results = readFileSync(join(app, 'results-ts.jsonl'), 'utf8').trim().split('\n');
    expect(results).toHaveLength(12);
    expect((JSON.parse(results[0]!) as { result: { type: string } }).result.type).toBe('succeeded');
  });

  it("runs the README's script against the emulator: events, results", async () => {
    // Compiled by the type-check test above.
    const emulator = await startEmulator();
    try {
      const prefix = uniquePrefix('pack-readme');
      prefixes.push(prefix);
      const env = cleanEnv({
        REDIS_URL,
        CLAUDE_BATCH_PREFIX: prefix,
        ANTHROPIC_API_KEY: 'sk-test-key-for-emulator-0000',
        ANTHROPIC_BASE_URL: emulator.url,
        CLAUDE_BATCH_LOG_LEVEL: 'warn',
      });
      const { stderr } = await run(
        process.execPath,
        ['build/readme-example.js', 'prompts.jsonl', 'results-readme.jsonl'],
        app,
        env,
      );
      expect(stderr).toMatch(/^batch batch_\w+$/m);
      expect(stderr).toMatch(/^12 requests \(created\)$/m);
      expect(stderr).toMatch(/^ended: 12 succeeded, 0 errored$/m);
      expect(stderr).toMatch(/^12 results in results-readme\.jsonl$/m);
    } finally {
      await emulator.close();
    }
  });

  it('runs a plain JavaScript script: runBatch against the emulator, results written', async () => {
    const prefix = uniquePrefix('pack-js');
    prefixes.push(prefix);
    const env = cleanEnv({
      REDIS_URL,
      CLAUDE_BATCH_PREFIX: prefix,
      ANTHROPIC_API_KEY: 'sk-test-key-for-emulator-0000',
      CLAUDE_BATCH_LOG_LEVEL: 'warn',
    });
    const { stdout } = await run(
      process.execPath,
      ['submit.mjs', 'prompts.jsonl', 'results-js.jsonl'],
      app,
      env,
    );
    expect(JSON.parse(stdout.trim())).toMatchObject({ total: 12, lines: 12, counts: { succeeded: 12 } });
    expect(readFileSync(join(app, 'results-js.jsonl'), 'utf8').trim().split('\n')).toHaveLength(12);
  });

  it('runs the installed bin: `npx claude-batch --help` and `npx claude-batch emulator --help`', async () => {
    const help = await run('npx', ['--no', '--', 'claude-batch', '--help'], app, cleanEnv());
    expect(help.stdout).toMatch(/Usage: claude-batch/);
    expect(help.stdout).toMatch(/submit/);
    const emulator = await run('npx', ['--no', '--', 'claude-batch', 'emulator', '--help'], app, cleanEnv());
    expect(emulator.stdout).toMatch(/Usage: claude-batch emulator/);
  });
});
