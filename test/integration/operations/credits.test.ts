/**
 * Credits running out mid-batch, in every shape the API has been seen to answer it with
 * (../shared/docs/anthropic-api.md, "What the live API has been seen to send"): the live 400
 * invalid_request_error "Your credit balance is too low...", and the documented 402 / 403
 * billing_error; and the workspace spend cap (429 enforced_spend_limit_reached). Through the real
 * SDK over HTTP to the emulator, two workers at concurrency 4, the fix run as `status` prints it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BillingErrorStatus } from '../../../src/emulator/index.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { getBatchStatus, type BatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, type TestRequest } from '../../helpers/batch.js';
import { runCli } from '../../helpers/cli.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const WORKERS = 2;
const CONCURRENCY = 4;
const TOTAL = 300;
const PAID = 50;

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function batchOf(n: number): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`q${i}`, `Question ${i}?`));
}

/** Waits until the batch is paused and nothing is in flight any more. */
async function pausedAndQuiet(r: WorkerRig, batchId: string): Promise<BatchStatus> {
  let status: BatchStatus | null = null;
  await vi.waitFor(
    async () => {
      status = await getBatchStatus(r.runtime, batchId);
      expect(status?.processing_status).toBe('paused');
      expect(r.activeCount).toBe(0);
    },
    { timeout: 30_000, interval: 50 },
  );
  return status!;
}

/** Runs the one command `claude-batch status BATCH` names as the fix, as an operator would. */
async function runStatedFix(r: WorkerRig, batchId: string, expected: RegExp): Promise<string> {
  const status = await runCli(['status', batchId], r.cliEnv());
  expect(status.code, status.stderr).toBe(0);
  expect(status.stdout).toMatch(expected);
  const fixLine = status.stdout.split('\n').find((l) => l.trim().startsWith('fix:'));
  const command = /`(claude-batch [^`]+)`/.exec(fixLine ?? '')?.[1];
  expect(command, status.stdout).toBeDefined();
  const fix = await runCli(command!.split(' ').slice(1), r.cliEnv());
  expect(fix.code, fix.stderr).toBe(0);
  return command!;
}

interface Shape {
  name: string;
  /** What the emulator does to refuse: credits run out, the spend cap is reached, or an error code. */
  refuse: 'credits' | 'spend_cap' | 'code';
  /** With `code`: the error.details.error_code every request gets once 50 were paid for. */
  code?: string;
  billingErrorStatus?: BillingErrorStatus;
  status: number;
  type: string;
  condition: string;
  says: RegExp;
}

const SHAPES: Shape[] = [
  {
    name: 'credits out as the live API sends it: 400 invalid_request_error "credit balance is too low"',
    refuse: 'credits',
    billingErrorStatus: 400,
    status: 400,
    type: 'invalid_request_error',
    condition: 'billing',
    says: /PAUSED\s+credits exhausted/,
  },
  {
    name: 'credits out as documented: 402 billing_error',
    refuse: 'credits',
    billingErrorStatus: 402,
    status: 402,
    type: 'billing_error',
    condition: 'billing',
    says: /PAUSED\s+credits exhausted/,
  },
  {
    name: 'credits out as older docs say: 403 billing_error',
    refuse: 'credits',
    billingErrorStatus: 403,
    status: 403,
    type: 'billing_error',
    condition: 'billing',
    says: /PAUSED\s+credits exhausted/,
  },
  {
    name: 'the spend cap: 429 enforced_spend_limit_reached',
    refuse: 'spend_cap',
    status: 429,
    type: 'rate_limit_error',
    condition: 'spend_cap',
    says: /PAUSED\s+a spend limit is reached/,
  },
  {
    name: 'a spend limit as a 402: linked_organization_spend_limit_reached',
    refuse: 'code',
    code: 'linked_organization_spend_limit_reached',
    status: 402,
    type: 'billing_error',
    condition: 'spend_cap',
    says: /PAUSED\s+a spend limit is reached/,
  },
  {
    name: 'a spend limit as a 429: contract_spend_limit_reached',
    refuse: 'code',
    code: 'contract_spend_limit_reached',
    status: 429,
    type: 'rate_limit_error',
    condition: 'spend_cap',
    says: /PAUSED\s+a spend limit is reached/,
  },
];

describe('credits exhausted mid-batch, in every shape: pause, alert, fix, every request once', () => {
  for (const shape of SHAPES) {
    it(
      shape.name,
      async () => {
        const r = (rig = await WorkerRig.start({
          name: `credits-${shape.status}`,
          emulator:
            shape.refuse === 'credits'
              ? { credits: { balance: PAID }, billingErrorStatus: shape.billingErrorStatus! }
              : {},
          overrides: { concurrency: String(CONCURRENCY) },
        }));
        const requests = batchOf(TOTAL);
        const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
        let capWatch: NodeJS.Timeout | undefined;
        if (shape.refuse !== 'credits') {
          // The limit is reached once 50 requests were paid for, as credits would run out.
          capWatch = setInterval(() => {
            if (r.emulator.control.log().filter((e) => e.status === 200).length >= PAID) {
              if (shape.refuse === 'spend_cap') r.emulator.control.setSpendCap(true);
              else r.emulator.control.setFaults({ probabilities: { [shape.code!]: 1 } });
              clearInterval(capWatch);
            }
          }, 5);
        }
        for (let i = 0; i < WORKERS; i++) await r.startWorker();
        const paused = await pausedAndQuiet(r, batchId);
        clearInterval(capWatch);

        // At most one refused request per in-flight slot before every worker stopped sending.
        const refused = r.emulator.control
          .log()
          .filter((e) =>
            shape.refuse === 'credits'
              ? e.billing
              : shape.refuse === 'spend_cap'
                ? e.rateLimit === 'spend_cap'
                : e.status === shape.status,
          );
        expect(refused.length).toBeGreaterThan(0);
        expect(refused.length).toBeLessThanOrEqual(WORKERS * CONCURRENCY);
        for (const e of refused) expect(e).toMatchObject({ status: shape.status, errorType: shape.type });
        expect(paused.paused[0]).toMatchObject({
          reason: 'key_breaker',
          type: shape.type,
          condition: shape.condition,
        });
        expect(paused.request_counts.errored).toBe(refused.length);
        expect(paused.errored_by_condition).toEqual({ [shape.condition]: refused.length });

        // The dead-letter entries keep the API's own status, type and message, plus the condition.
        const dead = await listDeadLetters(r.runtime, { batch: batchId });
        expect(dead).toHaveLength(refused.length);
        for (const d of dead) {
          expect(d).toMatchObject({
            status: shape.status,
            error_type: shape.type,
            condition: shape.condition,
          });
        }
        if (shape.status === 400) {
          expect(dead[0]!.message).toMatch(/^Your credit balance is too low/);
          const lines: string[] = [];
          for await (const line of r.runtime.store.results(batchId)) lines.push(line);
          const errored = lines.map((l) => JSON.parse(l) as { result: { type: string; error?: unknown } });
          expect(errored.find((l) => l.result.type === 'errored')?.result.error).toMatchObject({
            type: 'error',
            error: { type: 'invalid_request_error', message: expect.stringMatching(/^Your credit balance/) },
          });
        }

        // One alert in the log and one on the webhook, saying what is wrong.
        const alerts = r.logger.lines.filter((l) => l['event'] === 'key_breaker_tripped');
        expect(alerts).toHaveLength(1);
        await vi.waitFor(() => expect(r.hooks).toHaveLength(1), { timeout: 10_000 });
        expect(r.hooks[0]).toMatchObject({
          event: 'key_breaker_tripped',
          type: shape.type,
          condition: shape.condition,
        });

        if (shape.refuse === 'credits') r.emulator.control.topUp(10_000);
        else if (shape.refuse === 'spend_cap') r.emulator.control.setSpendCap(false);
        else r.emulator.control.setFaults({});
        const command = await runStatedFix(r, batchId, shape.says);
        expect(command).toMatch(/^claude-batch dlq retry --type /);

        const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
        expect(final.request_counts).toMatchObject({ succeeded: TOTAL, errored: 0, processing: 0 });
        expect(final.errored_by_condition).toEqual({});
        expect(final.paused).toEqual([]);
        await r.expectAllSucceededOnce(batchId, requests);
        expect(await listDeadLetters(r.runtime, { batch: batchId })).toEqual([]);
        r.expectNoKey();
      },
      90_000,
    );
  }

  it('the stated fix resumes the queue even when no entry is left to send (the batch was deleted)', async () => {
    const r = (rig = await WorkerRig.start({
      name: 'credits-deleted',
      emulator: { credits: { balance: 2 } },
      overrides: { concurrency: String(CONCURRENCY) },
    }));
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(batchOf(20)) });
    await r.startWorker();
    await pausedAndQuiet(r, batchId);
    const del = await runCli(['delete', batchId], r.cliEnv());
    expect(del.code, del.stderr).toBe(0);
    expect(await listDeadLetters(r.runtime, {})).toEqual([]);

    r.emulator.control.topUp(100);
    const fix = await runCli(['dlq', 'retry', '--type', 'billing_error'], r.cliEnv());
    expect(fix.code, fix.stderr).toBe(0);
    expect(fix.stderr).toMatch(/0 requests requeued; the paused queue was resumed/);
    expect(await r.runtime.requests.isPaused()).toBe(false);
    // A batch submitted after the fix runs to its end.
    const next = batchOf(5).map((q) => ({ ...q, custom_id: `n${q.custom_id}` }));
    const { batchId: nextId } = await submitBatch(r.runtime, { input: jsonlSource(next) });
    const final = await waitForBatch(r.runtime, nextId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 5 });
  }, 60_000);
});
