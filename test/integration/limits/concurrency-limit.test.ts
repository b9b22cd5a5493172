/**
 * Acceptance for issue 12's concurrency limits: the emulator allows 4 requests in flight, two
 * workers run at concurrency 32 each, 200 requests, through the real SDK over HTTP. Every request
 * succeeds exactly once, no retry is sent before the retry-after of the 429 that refused it, and
 * once the cap has settled each upward probe costs at most one 429.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  readConcurrencyCaps,
  type ConcurrencyCapSnapshot,
} from '../../../src/limits/in-flight-controller.js';
import { startDashboard } from '../../../src/dashboard/index.js';
import type { BatchStatus } from '../../../src/operations/batch-status.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { Secret } from '../../../src/secret.js';
import { jsonlSource, request, type TestRequest } from '../../helpers/batch.js';
import { runCli } from '../../helpers/cli.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const LIMIT = 4;
const TOTAL = 200;

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('a concurrency limit of the API key', () => {
  it('emulator limit 4, two workers at concurrency 32: every request once, no early retry, at most one 429 per probe', async () => {
    const r = (rig = await WorkerRig.start({
      name: 'concurrency-limit',
      emulator: { maxConcurrent: LIMIT, latency: { fixedMs: 100 } },
      overrides: { concurrency: '32', concurrencyProbeQuietMs: '1000' },
    }));
    const accountId = new Secret(r.apiKey).fingerprint();
    const requests: TestRequest[] = Array.from({ length: TOTAL }, (_, i) =>
      request(`q${i}`, `Question ${i}?`),
    );
    const started = Date.now();
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    await Promise.all([r.startWorker(), r.startWorker()]);

    // Watch the shared state: the last moment no probe had been made yet.
    let beforeFirstProbe = 0;
    let last: ConcurrencyCapSnapshot | undefined;
    const watch = setInterval(() => {
      const at = Date.now();
      void readConcurrencyCaps(r.runtime.redis, [accountId]).then(([caps]) => {
        last = caps;
        if ((caps?.probes ?? 0) === 0) beforeFirstProbe = Math.max(beforeFirstProbe, at);
      });
    }, 10);
    try {
      const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
      expect(final.request_counts).toMatchObject({ succeeded: TOTAL, errored: 0 });
    } finally {
      clearInterval(watch);
    }
    const wallMs = Date.now() - started;
    await r.expectAllSucceededOnce(batchId, requests);

    const log = r.emulator.control.log().filter((e) => e.path === '/v1/messages');
    const limited = log.filter((e) => e.rateLimit === 'concurrency');
    // No retry before the retry-after of the 429 that refused it (the emulator's clock, arrival times).
    const byPrompt = new Map<string, typeof log>();
    for (const e of log) byPrompt.set(e.promptHash ?? '', [...(byPrompt.get(e.promptHash ?? '') ?? []), e]);
    let early = 0;
    for (const entries of byPrompt.values()) {
      entries.sort((a, b) => a.at - b.at);
      entries.forEach((e, i) => {
        const next = entries[i + 1];
        if (e.status === 429 && next && next.at - e.at < (e.retryAfterSeconds ?? 0) * 1000) early += 1;
      });
    }
    expect(early).toBe(0);

    const [caps] = await readConcurrencyCaps(r.runtime.redis, [accountId]);
    expect(caps).toBeDefined();
    // Settled at the emulator's limit (or one above it, during a probe that has not met its 429).
    expect(caps!.learned).toBeGreaterThanOrEqual(LIMIT);
    expect(caps!.learned).toBeLessThanOrEqual(LIMIT + 1);
    expect(caps!.inFlight).toBe(0);
    const afterSettling = limited.filter((e) => e.at > beforeFirstProbe).length;
    expect(afterSettling).toBeLessThanOrEqual(caps!.probes);

    // `status` (text and --json, run without the key) and /metrics show the learned cap.
    const status = await runCli(['status', batchId], r.cliEnv());
    expect(status.stdout).toMatch(new RegExp(`in flight +at most ${caps!.learned} of class default at once`));
    const json = JSON.parse((await runCli(['status', batchId, '--json'], r.cliEnv())).stdout) as BatchStatus;
    expect(json.concurrency_caps).toEqual([
      expect.objectContaining({ account: accountId, class: 'default', learned: caps!.learned, in_flight: 0 }),
    ]);
    const dashboard = await startDashboard(r.runtime, { port: 0 });
    try {
      const metrics = await (await fetch(`${dashboard.url}metrics`)).text();
      expect(metrics).toContain(
        `claude_batch_concurrency_cap{account="${accountId}",class="default"} ${caps!.learned}`,
      );
      expect(metrics).toContain(
        `claude_batch_concurrency_probes_total{account="${accountId}",class="default",result="put_back"} ${caps!.failedProbes}`,
      );
    } finally {
      await dashboard.close();
    }
    console.log(
      `[concurrency] ${TOTAL} requests in ${wallMs} ms; 429s: ${limited.length} in all, ` +
        `${limited.length - afterSettling} before settling, ${afterSettling} after; probes ${caps!.probes} ` +
        `(${caps!.failedProbes} put back); learned cap ${caps!.learned}; last seen ${JSON.stringify(last)}`,
    );
  }, 120_000);
});
