/**
 * The benchmarks, side by side in one run against one Redis and the emulator; prints each section's
 * table and writes them all to bench/RESULTS.md with the machine they ran on.
 *
 *   npm run bench                          every section, full sizes (the end-to-end one alone takes
 *                                          ~25 min at 100k prompts and 4,000 RPM)
 *   npm run bench -- --quick               every section, small sizes (under ~15 min)
 *   npm run bench -- submit worker         some sections: submit worker concurrency budget memory e2e cancel admission utilisation
 *                                          processes fairshare autocache hosted
 *   npm run bench -- --quick processes     the CLI's submit and worker processes against raw BullMQ processes
 *
 * Options:
 *   --out FILE                 default bench/RESULTS.md; sections not run keep their earlier block
 *   --redis-url URL            use this Redis (its keys under unique prefixes, deleted at the end)
 *                              instead of a private redis-server on a free port (the default: INFO
 *                              commandstats and used_memory then see only this run)
 *   --profile DIR              run the measured child processes (submit, e2e, processes) under --cpu-prof into
 *                              DIR; for in-process sections run node --cpu-prof yourself:
 *                              node --cpu-prof --cpu-prof-dir=DIR --import tsx scripts/bench/index.ts worker --variants full
 *   --worker-concurrency N     worker section (default 16)
 *   --variants raw,full,...    worker section: raw, full, nobudget (default all three), nogate (what-if)
 *   --e2e-concurrency N        end-to-end section (default 64)
 *   --processes-rounds N       processes section: interleaved pairs per row (default 3)
 *   --raw-concurrency N        processes section: the raw BullMQ Worker's concurrency (default 16)
 *   --hosted-parts LIST        hosted section: paths (live, batches, auto), splits (full-size), or both (default)
 *   --baseline DIR             submit section: also run submitBatch and the CLI from another checkout
 *                              (e.g. the tree before a change; node_modules may be a symlink), side by side
 *
 * Summarise a profile with `npx tsx scripts/bench/profile-summary.ts FILE.cpuprofile`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { runAutoCacheSection } from './auto-cache.js';
import { runCancelSection } from './cancel-delete.js';
import { runConcurrencySection } from './concurrency.js';
import { runEndToEndSection } from './end-to-end.js';
import { runFairShareSection } from './fair-share.js';
import { runHostedSection } from './hosted.js';
import { infoField, load1, startPrivateRedis, REPO_ROOT, type BenchContext } from './lib/harness.js';
import { machineInfo, renderSection, renderTable, writeResults, type SectionResult } from './lib/report.js';
import { runMemorySection } from './memory.js';
import { runProcessesSection } from './processes.js';
import { runSubmitSection } from './submit.js';
import { runUtilisationSection } from './utilisation.js';
import { runWorkerSection } from './worker-overhead.js';

type SectionRunner = (ctx: BenchContext) => Promise<SectionResult>;

/** In the order they run and appear in RESULTS.md. */
const SECTIONS: ReadonlyArray<[string, SectionRunner]> = [
  ['submit', runSubmitSection],
  ['worker', runWorkerSection],
  ['concurrency', runConcurrencySection],
  ['budget', runBudgetSection],
  ['memory', runMemorySection],
  ['e2e', runEndToEndSection],
  ['cancel', runCancelSection],
  ['admission', runAdmissionSection],
  ['utilisation', runUtilisationSection],
  ['processes', runProcessesSection],
  ['fairshare', runFairShareSection],
  ['autocache', runAutoCacheSection],
  ['hosted', runHostedSection],
];
const ALIASES: Record<string, string> = {
  'worker-overhead': 'worker',
  'end-to-end': 'e2e',
  budgets: 'budget',
  delete: 'cancel',
  'cancel-delete': 'cancel',
  'fair-share': 'fairshare',
  'auto-cache': 'autocache',
  batches: 'hosted',
};

/** Section "budget": another engineer's scripts/bench/budget.ts, run as it is, as a child process. */
async function runBudgetSection(ctx: BenchContext): Promise<SectionResult> {
  const script = fileURLToPath(new URL('./budget.ts', import.meta.url));
  const args = ['--import', 'tsx', script, ...(ctx.quick ? ['--quick'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  if (code !== 0) throw new Error(`scripts/bench/budget.ts exited ${code}`);
  return {
    key: 'budget',
    title: '4. Budget utilisation (scripts/bench/budget.ts, run as is)',
    intro:
      'The shared budget against a pure Bottleneck Redis-mode budget, by its owner; it starts its own ' +
      'private redis-server and emulator. Its output, verbatim:',
    tables: [],
    notes: [`load (1 min) when it finished: ${load1()}.`],
    verbatim: stdout,
  };
}

/** Section "admission": scripts/bench/admission.ts as a child (its own private redis-server). */
async function runAdmissionSection(ctx: BenchContext): Promise<SectionResult> {
  const script = fileURLToPath(new URL('./admission.ts', import.meta.url));
  const args = ['--import', 'tsx', script, ctx.quick ? '3' : '10', '64'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  if (code !== 0) throw new Error(`scripts/bench/admission.ts exited ${code}`);
  return {
    key: 'admission',
    title: '8. Admission rate of one process once requests wait for the budget',
    intro:
      'One process, one model class, 64 requests waiting, a bucket that starts empty so every admission waits for ' +
      'refill; acquire + settle with no API call (admission alone). Goal (issue 16): at least 2,000 a second per ' +
      'process per class at a budget of 120,000 RPM or more. Its output, verbatim:',
    tables: [],
    notes: [
      `load (1 min) when it finished: ${load1()}.`,
      'Before bulk admission (2026-12-02, same script): every waiter went through Bottleneck one job at a time and ' +
        'one acquire script each: 200, 228 and 253 admissions a second at these three budgets (0.10, 0.06, 0.03 of ' +
        'the refill), 5 Redis commands each. Bottleneck alone, one trivial job at a time with maxConcurrent 1, runs ' +
        '~350 jobs a second on this machine: so it now runs one job per busy period, and the head of the FIFO asks ' +
        'the bucket for the waiters behind it in bulk (what 20 ms of refill buys, at most 64), handing the surplus ' +
        'out locally and giving back what nobody takes within 100 ms.',
    ],
    verbatim: stdout,
  };
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO_ROOT, 'bench/RESULTS.md') },
      'redis-url': { type: 'string' },
      profile: { type: 'string' },
      'worker-concurrency': { type: 'string' },
      variants: { type: 'string' },
      'e2e-concurrency': { type: 'string' },
      baseline: { type: 'string' },
      'processes-rounds': { type: 'string' },
      'raw-concurrency': { type: 'string' },
      'hosted-parts': { type: 'string' },
    },
  });
  const known = new Set(SECTIONS.map(([name]) => name));
  const wanted = positionals.map((p) => ALIASES[p] ?? p);
  for (const name of wanted) {
    if (!known.has(name)) {
      console.error(`unknown section ${JSON.stringify(name)}: expected some of ${[...known].join(', ')}`);
      return 2;
    }
  }
  const selected = SECTIONS.filter(([name]) => wanted.length === 0 || wanted.includes(name));
  const quick = values.quick === true;
  const mode = quick ? 'quick' : 'full';

  const privateRedis = values['redis-url'] === undefined ? await startPrivateRedis() : null;
  const redisUrl = values['redis-url'] ?? privateRedis?.url ?? '';
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const tmpDir = await mkdtemp(join(tmpdir(), 'cb-bench-'));
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
  const cleanup = async () => {
    admin.disconnect();
    await rm(tmpDir, { recursive: true, force: true });
    await privateRedis?.stop();
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  const ctx: BenchContext = {
    quick,
    redisUrl,
    privateRedis: privateRedis !== null,
    admin,
    tmpDir,
    childNodeFlags: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    options: values,
    log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
  };
  const redisVersion = await infoField(admin, 'server', 'redis_version');
  const machine = machineInfo(
    redisVersion,
    privateRedis
      ? 'a private redis-server started for the run, no persistence, like the shared one'
      : `the Redis at ${redisUrl.replace(/\/\/[^@]*@/, '//***@')}, shared: commandstats and memory include other clients`,
  );
  ctx.log(
    `${mode} run of ${selected.map(([n]) => n).join(', ')} on ${machine.cpu} x${machine.cores}, ` +
      `node ${machine.node}, redis ${redisVersion}, load ${load1()}`,
  );

  const rendered = new Map<string, string>();
  let failures = 0;
  try {
    for (const [name, run] of selected) {
      const startedAt = new Date();
      const t0 = performance.now();
      let result: SectionResult;
      try {
        result = await run(ctx);
      } catch (err) {
        failures++;
        ctx.log(`section ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        result = {
          key: name,
          title: `${name}: FAILED`,
          intro: `The section failed: ${err instanceof Error ? err.message : String(err)}`,
          tables: [],
          notes: [],
        };
      }
      const block = renderSection(result, mode, startedAt, (performance.now() - t0) / 1000);
      rendered.set(name, block);
      process.stdout.write(`\n${result.title}\n`);
      for (const table of result.tables) process.stdout.write(`${renderTable(table)}\n`);
      if (result.verbatim) process.stdout.write(result.verbatim);
      for (const note of result.notes) process.stdout.write(`- ${note}\n`);
    }
  } finally {
    await cleanup();
  }
  const out = isAbsolute(values.out ?? '') ? values.out : resolve(values.out ?? 'bench/RESULTS.md');
  const command = `npm run bench --${quick ? ' --quick' : ''}${wanted.length ? ` ${wanted.join(' ')}` : ''}`;
  await writeResults(
    out,
    machine,
    command,
    SECTIONS.map(([name]) => name),
    rendered,
  );
  ctx.log(`written to ${out}${profileDir ? `; CPU profiles in ${profileDir}` : ''}`);
  return failures > 0 ? 1 : 0;
}

process.exit(await main());
