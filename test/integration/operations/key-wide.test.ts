/**
 * Key-wide means the key (issue 12, item 4): two runners with different key prefixes and the same
 * API key. Credits running out, seen by prefix A's worker, pause prefix B's queue too, `status`
 * under B says so with the fix, and that fix run under either prefix releases both. Through the
 * real SDK over HTTP to two emulators (one per runner, A's with a small balance).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { submitBatch } from '../../../src/queue/producer.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, type TestRequest } from '../../helpers/batch.js';
import { runCli } from '../../helpers/cli.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const CONCURRENCY = 2;

let rigs: WorkerRig[] = [];
afterEach(async () => {
  await Promise.allSettled(rigs.map((r) => r.close()));
  rigs = [];
});

function batchOf(tag: string, n: number): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`${tag}${i}`, `Question ${tag} ${i}?`));
}

/** The `claude-batch ...` command of the `fix:` line `status BATCH` prints under the rig's prefix. */
async function statedFix(r: WorkerRig, batchId: string): Promise<string> {
  const status = await runCli(['status', batchId], r.cliEnv());
  expect(status.code, status.stderr).toBe(0);
  expect(status.stdout).toMatch(/PAUSED\s+credits exhausted/);
  const fixLine = status.stdout.split('\n').find((l) => l.trim().startsWith('fix:'));
  const command = /`(claude-batch [^`]+)`/.exec(fixLine ?? '')?.[1];
  expect(command, status.stdout).toBeDefined();
  return command!;
}

describe('the key-wide breaker stops every prefix that uses the key', () => {
  for (const fixUnder of ['b', 'a'] as const) {
    it(`a credit trip under prefix A pauses prefix B within a second; the fix run under ${fixUnder.toUpperCase()} releases both`, async () => {
      const apiKey = `sk-test-keywide-${randomBytes(6).toString('hex')}`;
      const a = await WorkerRig.start({
        name: 'keywide-a',
        apiKey,
        emulator: { credits: { balance: 10 }, latency: { fixedMs: 20 } },
        overrides: { concurrency: String(CONCURRENCY) },
      });
      rigs.push(a);
      const b = await WorkerRig.start({
        name: 'keywide-b',
        apiKey,
        emulator: { latency: { fixedMs: 20 } },
        overrides: { concurrency: String(CONCURRENCY) },
      });
      rigs.push(b);
      const reqA = batchOf('a', 40);
      const reqB = batchOf('b', 150);
      const { batchId: idA } = await submitBatch(a.runtime, { input: jsonlSource(reqA) });
      const { batchId: idB } = await submitBatch(b.runtime, { input: jsonlSource(reqB) });
      await b.startWorker();
      // B is busy sending when A's credits run out.
      await vi.waitFor(
        () => expect(b.emulator.control.log().filter((e) => e.status === 200).length).toBeGreaterThan(5),
        { timeout: 10_000, interval: 10 },
      );
      await a.startWorker();
      await vi.waitFor(() => expect(a.emulator.control.log().some((e) => e.billing)).toBe(true), {
        timeout: 10_000,
        interval: 5,
      });
      const refusedAt = Date.now();
      await vi.waitFor(
        async () => {
          expect(await b.runtime.requests.isPaused()).toBe(true);
          expect((await getBatchStatus(b.runtime, idB))?.paused[0]).toMatchObject({
            reason: 'key_breaker',
            condition: 'billing',
          });
        },
        { timeout: 1_500, interval: 10 },
      );
      const pausedSeenAt = Date.now();
      expect(pausedSeenAt - refusedAt).toBeLessThan(1_500);
      await vi.waitFor(() => expect(b.activeCount + a.activeCount).toBe(0), { timeout: 10_000 });
      // After the pause reached B, B sent at most what was already past its send-time check.
      const sentAfter = b.emulator.control.log().filter((e) => e.at > pausedSeenAt).length;
      expect(sentAfter).toBeLessThanOrEqual(CONCURRENCY);
      console.log(
        `[key-wide] B paused ${pausedSeenAt - refusedAt} ms after A's first refusal was logged; B sent ${sentAfter} after`,
      );
      const bDone = (await getBatchStatus(b.runtime, idB))!.request_counts.succeeded;
      expect(bDone).toBeLessThan(reqB.length);

      // `status` under B names the condition and the fix, though B never saw a refusal.
      const command = await statedFix(b, idB);
      expect(command).toMatch(/^claude-batch (dlq retry --type billing_error|resume)$/);
      a.emulator.control.topUp(10_000);
      const fixer = fixUnder === 'a' ? a : b;
      const fix = await runCli(command.split(' ').slice(1), fixer.cliEnv());
      expect(fix.code, fix.stderr).toBe(0);

      const [finalA, finalB] = await Promise.all([
        waitForBatch(a.runtime, idA, { pollMs: 100 }),
        waitForBatch(b.runtime, idB, { pollMs: 100 }),
      ]);
      expect(finalB.request_counts).toMatchObject({ succeeded: reqB.length, errored: 0 });
      expect(finalB.paused).toEqual([]);
      expect(finalA.paused).toEqual([]);
      await b.expectAllSucceededOnce(idB, reqB);
      // A's refused requests are dead-lettered (billing); the fix under A requeues them too.
      if (fixUnder === 'a') {
        expect(finalA.request_counts).toMatchObject({ succeeded: reqA.length, errored: 0 });
        await a.expectAllSucceededOnce(idA, reqA);
      } else {
        expect(finalA.request_counts.succeeded + finalA.request_counts.errored).toBe(reqA.length);
      }
      a.expectNoKey();
      b.expectNoKey();
    }, 60_000);
  }
});
