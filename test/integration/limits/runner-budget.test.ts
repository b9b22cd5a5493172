import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  startEmulator,
  replyFingerprint,
  type EmulatorHandle,
  type EmulatorOptions,
} from '../../../src/emulator/index.js';
import { budgetKeyPattern } from '../../../src/limits/index.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { Secret } from '../../../src/secret.js';
import type { Runtime } from '../../../src/runtime.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, type TestRequest } from '../../helpers/batch.js';
import { cliEnv, runCli } from '../../helpers/cli.js';
import { deletePrefix, REDIS_URL, uniquePrefix } from '../../helpers/runtime.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

/**
 * The budget as the worker uses it, built from --rpm/--itpm (not handed in), against the emulator
 * enforcing the limits for real. Invariants only: zero 429s, never early after a retry-after.
 */
let rig: WorkerRig | undefined;
/** Set by the one test that starts its own emulator for worker processes. */
let emulator: EmulatorHandle | undefined;
let apiKey: string;

afterEach(async () => {
  if (rig) {
    await deleteBudget(rig.runtime);
    await rig.close();
  }
  rig = undefined;
  await emulator?.close();
  emulator = undefined;
});

async function deleteBudget(r: Runtime): Promise<number> {
  const keys = await r.redis.keys(budgetKeyPattern(new Secret(apiKey).fingerprint()));
  if (keys.length > 0) await r.redis.del(...keys);
  return keys.length;
}

async function setUp(name: string, limits: EmulatorOptions['limits'], overrides: Record<string, string>) {
  // A key of its own: the budget is the account's, and no other test may share it.
  apiKey = `sk-test-budget-${randomBytes(6).toString('hex')}`;
  rig = await WorkerRig.start({
    name,
    emulator: { seed: 9, limits, latency: { fixedMs: 30 } },
    overrides: { concurrency: '16', ...overrides },
    apiKey,
    clientTimeoutMs: 20_000,
  });
  emulator = undefined;
  return { runtime: rig.runtime, logger: rig.logger };
}

async function work(): Promise<void> {
  await rig!.startWorker();
}

const messages = () => (rig?.emulator ?? emulator!).control.log().filter((e) => e.path === '/v1/messages');

function batch(n: number, tag: string, text = (i: number) => `Budget question ${tag} ${i}`): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`${tag}${i}`, text(i)));
}

describe('the worker paced by its shared budget, against the emulator enforcing the same limits', () => {
  it('RPM: more requests than the bucket holds, zero 429s', async () => {
    const { runtime: r } = await setUp('budget-rpm', { rpm: 120 }, { rpm: '120' });
    const { batchId } = await submitBatch(r, { input: jsonlSource(batch(140, 'r')), canary: false });
    await work();
    const status = await waitForBatch(r, batchId, { pollMs: 100 });
    expect(status.request_counts).toMatchObject({ succeeded: 140, errored: 0 });
    expect(messages().filter((e) => e.status === 429)).toEqual([]);
    expect(messages()).toHaveLength(140);
  });

  it('ITPM with long prompts: zero 429s', async () => {
    const long = (i: number) => `Summarise item ${i}: ${'lorem ipsum dolor sit amet '.repeat(300)}`;
    const { runtime: r } = await setUp('budget-itpm', { itpm: 60_000 }, { itpm: '60000' });
    const requests = batch(36, 'i', long);
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await work();
    const status = await waitForBatch(r, batchId, { pollMs: 100 });
    expect(status.request_counts).toMatchObject({ succeeded: 36, errored: 0 });
    const sent = messages();
    expect(sent.filter((e) => e.status === 429)).toEqual([]);
    // The batch is larger than one minute of the budget: the limit was really in play.
    expect(sent.reduce((sum, e) => sum + e.inputTokens, 0)).toBeGreaterThan(60_000);
  });

  it('keys deleted mid-run: the bucket comes back empty, the run completes with zero 429s', async () => {
    const { runtime: r } = await setUp('budget-del', { rpm: 120 }, { rpm: '120' });
    const { batchId } = await submitBatch(r, { input: jsonlSource(batch(150, 'd')), canary: false });
    await work();
    await expect.poll(() => messages().length, { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(125);
    expect(await deleteBudget(r)).toBeGreaterThan(0);
    const status = await waitForBatch(r, batchId, { pollMs: 100 });
    expect(status.request_counts).toMatchObject({ succeeded: 150, errored: 0 });
    expect(messages().filter((e) => e.status === 429)).toEqual([]);
  });

  it('the real limit at half the configured one: adapts, and never sends before a retry-after', async () => {
    const { runtime: r, logger } = await setUp('budget-half', { rpm: 60 }, { rpm: '120' });
    const requests = batch(75, 'h');
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await work();
    const status = await waitForBatch(r, batchId, { pollMs: 100 });
    expect(status.request_counts).toMatchObject({ succeeded: 75, errored: 0 });

    const log = messages();
    for (const q of requests) {
      const tries = log
        .filter((e) => e.promptHash === replyFingerprint(q.params))
        .sort((a, b) => a.seq - b.seq);
      expect(
        tries.filter((e) => e.status === 200),
        q.custom_id,
      ).toHaveLength(1);
      for (let i = 1; i < tries.length; i++) {
        const previous = tries[i - 1]!;
        if (previous.retryAfterSeconds !== null) {
          expect(tries[i]!.at - previous.at).toBeGreaterThanOrEqual(previous.retryAfterSeconds * 1000);
        }
      }
    }
    // It learned the lower limit from the headers (once), and the 429s stayed a handful.
    expect(logger.lines.filter((l) => /lower|adapt/i.test(String(l['msg'])))).toHaveLength(1);
    expect(log.filter((e) => e.status === 429).length).toBeLessThanOrEqual(16);
  });

  it('a request larger than a whole bucket is dead-lettered at once, unsent, naming the limit', async () => {
    const { runtime: r } = await setUp('budget-over', { itpm: 1_000 }, { itpm: '1000' });
    const requests = [request('small', 'hi'), request('huge', 'x'.repeat(20_000))];
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await work();
    const status = await waitForBatch(r, batchId, { pollMs: 100 });
    expect(status.request_counts).toMatchObject({ succeeded: 1, errored: 1 });
    const [dead] = await listDeadLetters(r, { batch: batchId });
    expect(dead).toMatchObject({ custom_id: 'huge', reason: 'over_budget', status: null, attempts: 0 });
    expect(dead!.message).toMatch(/input/i);
    expect(dead!.message).toMatch(/1000|1,000/);
    expect(messages().map((e) => e.promptHash)).toEqual([replyFingerprint(requests[0]!.params)]);
  });
});

describe('three worker processes with one --rpm', () => {
  it('together send no more than the budget: zero 429s', async () => {
    const key = `sk-test-budget3-${randomBytes(6).toString('hex')}`;
    apiKey = key;
    emulator = await startEmulator({ seed: 4, limits: { rpm: 120 }, latency: { fixedMs: 30 } });
    const prefix = uniquePrefix('budget-3p');
    const dir = await mkdtemp(join(tmpdir(), 'cb-budget3-'));
    const env = cliEnv({
      CLAUDE_BATCH_PREFIX: prefix,
      ANTHROPIC_API_KEY: key,
      ANTHROPIC_BASE_URL: emulator.url,
    });
    try {
      const file = join(dir, 'p.jsonl');
      await writeFile(
        file,
        batch(150, 'p')
          .map((q) => JSON.stringify(q))
          .join('\n'),
      );
      expect((await runCli(['submit', file, '--no-canary'], env)).code).toBe(0);
      const workers = await Promise.all(
        [1, 2, 3].map(() => runCli(['worker', '--until-idle', '--rpm', '120', '--concurrency', '8'], env)),
      );
      for (const w of workers) expect(w.code).toBe(0);
      const sent = messages();
      expect(sent.filter((e) => e.status === 200)).toHaveLength(150);
      expect(sent.filter((e) => e.status === 429)).toEqual([]);
    } finally {
      await deletePrefix(prefix);
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(budgetKeyPattern(new Secret(key).fingerprint()));
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
