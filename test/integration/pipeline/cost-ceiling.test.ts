/**
 * The acceptance test of the cost ceiling (issue 15): a 2,000-request batch worked by two worker
 * processes (CLI children) with a ceiling at about half its cost pauses with reason cost_ceiling;
 * its spend, computed here from the emulator's own log of usage, is at most the ceiling and at
 * least 80 % of it; a second batch running at the same time is not paused and ends; a worker
 * SIGKILLed while holding reservations does not leak them (the ceiling is still reached); and
 * `resume BATCH --max-cost` with a higher ceiling finishes the batch.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { getBatchStatus, type BatchStatus } from '../../../src/operations/batch-status.js';
import type { Runtime } from '../../../src/runtime.js';
import { request, type TestRequest } from '../../helpers/batch.js';
import { cliEnv, runCli, spawnCli } from '../../helpers/cli.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

const MODEL = 'claude-sonnet-4-6';
/** USD per million tokens of claude-sonnet-4-6 in the built-in table. */
const PRICE = { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 };
const CEILING = 1;
/**
 * The emulator's replies are 16 to 128 tokens: max_tokens 400 makes a request's worst case (what
 * is reserved) about 5 x its typical cost, so "little is left unused" is a real test.
 */
const MAX_TOKENS = 400;

let emulator: EmulatorHandle;
let runtime: Runtime;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  emulator = await startEmulator({
    seed: 15,
    latency: { fixedMs: 60, jitterMs: 60 },
    requestLogSize: 20_000,
  });
  runtime = await testRuntime('cost-ceiling');
  dir = await mkdtemp(join(tmpdir(), 'cb-cost-'));
});

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await emulator.close();
  await disposeRuntime(runtime);
  await rm(dir, { recursive: true, force: true });
});

/** What the emulator's log says the requests cost (successful /v1/messages answers only). */
function spentOn(requests: readonly TestRequest[]): number {
  const prompts = new Set(requests.map((r) => replyFingerprint(r.params)));
  let usd = 0;
  for (const e of emulator.control.log()) {
    if (e.path !== '/v1/messages' || e.status !== 200 || !e.promptHash || !prompts.has(e.promptHash))
      continue;
    usd +=
      (e.inputTokens * PRICE.input +
        e.outputTokens * PRICE.output +
        e.cacheCreationInputTokens * PRICE.cacheWrite +
        e.cacheReadInputTokens * PRICE.cacheRead) /
      1_000_000;
  }
  return usd;
}

async function writeBatch(name: string, requests: readonly TestRequest[]): Promise<string> {
  const file = join(dir, `${name}.jsonl`);
  await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n'));
  return file;
}

describe('cost ceiling across two worker processes', () => {
  it('pauses the batch alone at its ceiling, spends 80-100 % of it, survives a SIGKILL, and resumes higher', async () => {
    const env = cliEnv({
      CLAUDE_BATCH_PREFIX: runtime.keys.bullPrefix,
      ANTHROPIC_API_KEY: 'sk-test-cost-ceiling-key',
      ANTHROPIC_BASE_URL: emulator.url,
      CLAUDE_BATCH_BACKOFF_BASE_MS: '50',
      CLAUDE_BATCH_BACKOFF_MAX_MS: '200',
      // A killed worker's jobs, and its cost reservations with them, come back within seconds.
      CLAUDE_BATCH_LOCK_DURATION_MS: '3000',
      CLAUDE_BATCH_STALLED_INTERVAL_MS: '1000',
      CLAUDE_BATCH_CONCURRENCY: '16',
      CLAUDE_BATCH_LOG_LEVEL: 'warn',
    });
    const extra = { model: MODEL, max_tokens: MAX_TOKENS };
    const capped = Array.from({ length: 2_000 }, (_, i) => request(`a-${i}`, `Capped item ${i}`, extra));
    const free = Array.from({ length: 300 }, (_, i) => request(`b-${i}`, `Free item ${i}`, extra));

    const a = await runCli(
      ['submit', await writeBatch('capped', capped), '--max-cost', String(CEILING), '--no-auto-cache'],
      env,
    );
    expect(a.stderr).not.toMatch(/claude-batch: /);
    expect(a.code).toBe(0);
    const idA = a.stdout.trim().split('\n').pop()!;
    const b = await runCli(['submit', await writeBatch('free', free), '--no-auto-cache'], env);
    expect(b.code).toBe(0);
    const idB = b.stdout.trim().split('\n').pop()!;

    const worker = () => {
      const child = spawnCli(['worker'], env);
      child.stderr?.on('data', (d: Buffer) => {
        if (process.env['TEST_LOG']) process.stderr.write(d);
      });
      children.push(child);
      return child;
    };
    const first = worker();
    worker();

    // Kill one worker once the batch has spent a good part of its ceiling and holds reservations.
    let held = 0;
    await expect
      .poll(
        async () => {
          const s = await getBatchStatus(runtime, idA);
          held = s?.cost?.reserved_usd ?? 0;
          return (s?.cost?.spent_usd ?? 0) >= 0.3 && held > 0;
        },
        { timeout: 40_000, interval: 20 },
      )
      .toBe(true);
    first.kill('SIGKILL');
    worker(); // two workers again

    // The ceiling: batch A pauses, with nothing left in flight; B ends, never paused.
    let paused: BatchStatus | null = null;
    await expect
      .poll(
        async () => {
          paused = await getBatchStatus(runtime, idA);
          return (
            paused?.paused.some((p) => p.reason === 'cost_ceiling') === true &&
            paused.cost?.reserved_usd === 0
          );
        },
        { timeout: 40_000, interval: 100 },
      )
      .toBe(true);
    const atPause = paused as BatchStatus | null;
    expect(atPause?.processing_status).toBe('paused');
    expect(atPause?.paused).toEqual([
      expect.objectContaining({
        scope: 'batch',
        reason: 'cost_ceiling',
        ceiling_usd: CEILING,
        fix: expect.stringContaining(`claude-batch resume ${idA} --max-cost`),
      }),
    ]);
    const ledgerSpent = atPause?.cost?.spent_usd ?? NaN;
    const spent = spentOn(capped);
    console.log(
      `[cost] ceiling $${CEILING}: spent $${spent.toFixed(4)} by the emulator's log, $${ledgerSpent.toFixed(4)} by the ledger; ` +
        `$${held.toFixed(4)} reserved when a worker was killed; ${atPause?.request_counts.succeeded} of ${capped.length} done`,
    );
    expect(spent).toBeLessThanOrEqual(CEILING);
    expect(ledgerSpent).toBeLessThanOrEqual(CEILING);
    expect(spent).toBeGreaterThanOrEqual(0.8 * CEILING);
    // The killed worker held reservations: they came back charged at their worst case, which is
    // why the ledger counts more than the log (rounding alone is under a nano-dollar a call).
    expect(ledgerSpent - spent).toBeGreaterThan(0.001);
    expect(atPause?.request_counts.processing).toBeGreaterThan(0);

    await expect
      .poll(async () => (await getBatchStatus(runtime, idB))?.processing_status, {
        timeout: 30_000,
        interval: 100,
      })
      .toBe('ended');
    const finalB = await getBatchStatus(runtime, idB);
    expect(finalB?.paused).toEqual([]);
    expect(finalB?.request_counts.succeeded).toBe(free.length);
    expect(finalB?.cost).toBeNull();

    // Still paused, with nothing of it sent meanwhile (B ran to its end): its requests are parked.
    const beforeResume = spentOn(capped);
    expect(beforeResume).toBe(spent);
    expect((await getBatchStatus(runtime, idA))?.processing_status).toBe('paused');

    const resumed = await runCli(['resume', idA, '--max-cost', '10'], env);
    expect(resumed.stderr).toMatch(/resumed \(lifted: cost_ceiling\); cost ceiling \$10/);
    expect(resumed.code).toBe(0);
    await expect
      .poll(async () => (await getBatchStatus(runtime, idA))?.processing_status, {
        timeout: 40_000,
        interval: 100,
      })
      .toBe('ended');
    const finalA = await getBatchStatus(runtime, idA);
    expect(finalA?.request_counts.succeeded).toBe(capped.length);
    expect(finalA?.paused).toEqual([]);
    const total = spentOn(capped);
    console.log(
      `[cost] the whole batch cost $${total.toFixed(4)} (ceiling $${CEILING} = ${Math.round((CEILING / total) * 100)} %)`,
    );
    expect(beforeResume).toBeLessThanOrEqual(CEILING);
    // The first ceiling was about half the batch's cost.
    expect(CEILING / total).toBeGreaterThan(0.3);
    expect(CEILING / total).toBeLessThan(0.7);
    expect(finalA?.cost?.spent_usd).toBeGreaterThanOrEqual(total - 1e-6);
    // Done with them: the next test runs its own worker alone.
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 120_000);

  it('worker --until-idle exits once only requests of a batch paused at its ceiling are left', async () => {
    const env = cliEnv({
      CLAUDE_BATCH_PREFIX: runtime.keys.bullPrefix,
      ANTHROPIC_API_KEY: 'sk-test-cost-ceiling-key',
      ANTHROPIC_BASE_URL: emulator.url,
      CLAUDE_BATCH_LOG_LEVEL: 'warn',
    });
    const requests = Array.from({ length: 20 }, (_, i) =>
      request(`idle-${i}`, `Idle item ${i}`, { model: MODEL, max_tokens: MAX_TOKENS }),
    );
    // About three worst cases ($0.006 each): a few requests go, then the batch pauses.
    const submitted = await runCli(
      ['submit', await writeBatch('idle', requests), '--max-cost', '0.02', '--no-auto-cache'],
      env,
    );
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim().split('\n').pop()!;
    const worker = await runCli(['worker', '--until-idle'], env);
    expect(worker.code).toBe(0);
    expect(worker.stderr).toMatch(
      /the batches left are paused at their cost ceiling with \d+ requests waiting/,
    );
    const status = await getBatchStatus(runtime, id);
    expect(status?.paused.map((p) => p.reason)).toEqual(['cost_ceiling']);
    expect(status?.request_counts.succeeded).toBeGreaterThan(0);
    expect(status?.cost?.spent_usd).toBeLessThanOrEqual(0.02);
    expect(spentOn(requests)).toBeLessThanOrEqual(0.02);
  }, 60_000);
});
