/**
 * The hosted path seen everywhere (issue 14): `status` (JSON and text), the dashboard's batch page
 * and /metrics show a batch's path, deadline, hosted batches with the API's ids, status and counts,
 * what each path answered, a chunk held for an operator as a pause with its fix, and its cost with
 * the hosted answers at half price. Real workers, the real SDK and the emulator's hosted batches.
 */
import { createRequire } from 'node:module';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatBatchStatus, formatBatchTable } from '../../../src/cli/format-status.js';
import { renderBatchPage } from '../../../src/dashboard/batch-page.js';
import { readSnapshot } from '../../../src/dashboard/dashboard-data.js';
import { renderMetrics } from '../../../src/dashboard/metrics.js';
import { getBatchStatus, listBatchStatuses, type BatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { costAt, DEFAULT_PRICE_TABLE, findPrice } from '../../../src/pricing/price-table.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { watchBatch } from '../../../src/watch-batch.js';
import { jsonlSource, request, type TestRequest } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const MODEL = 'claude-sonnet-4-6';
const HOSTED = { hostedPollMs: '50', hostedPollMaxMs: '200', hostedMaxRequests: '101' };

interface ParsedFamily {
  name: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
// parse-prometheus-text-format ships no types.
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => ParsedFamily[];

let rig: WorkerRig | undefined;

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function requests(n: number, prefix = 'q'): TestRequest[] {
  return Array.from({ length: n }, (_, i) =>
    request(`${prefix}-${i}`, `Question ${prefix} ${i}?`, { model: MODEL }),
  );
}

/** The hosted batches the emulator holds, by id, through the SDK as any client would list them. */
async function emulatorBatchIds(): Promise<string[]> {
  const client = new Anthropic({ apiKey: rig!.apiKey, baseURL: rig!.emulator.url, maxRetries: 0 });
  const ids: string[] = [];
  for await (const batch of client.messages.batches.list({ limit: 100 })) ids.push(batch.id);
  return ids.sort();
}

async function status(batchId: string): Promise<BatchStatus> {
  const s = await getBatchStatus(rig!.runtime, batchId);
  if (!s) throw new Error(`no batch ${batchId}`);
  return s;
}

async function metrics(): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  const snapshot = await readSnapshot(rig!.runtime);
  const families = parsePrometheus(await renderMetrics({ stats: {}, snapshot, prices: DEFAULT_PRICE_TABLE }));
  return (name, labels = {}) => {
    const found = families
      .find((f) => f.name === name)
      ?.metrics.find(
        (m) =>
          Object.entries(labels).every(([k, v]) => m.labels?.[k] === v) &&
          Object.keys(m.labels ?? {}).length === Object.keys(labels).length,
      );
    return found === undefined ? undefined : Number(found.value);
  };
}

async function page(): Promise<string> {
  return renderBatchPage({
    snapshot: await readSnapshot(rig!.runtime),
    prices: DEFAULT_PRICE_TABLE,
    prefix: rig!.runtime.keys.bullPrefix,
    readOnly: true,
    refreshSeconds: 0,
    boardPath: 'queues',
  });
}

const usd = (value: number) => (value < 1 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`);

describe('status, dashboard and /metrics of hosted batches', () => {
  it('show the path, the hosted ids with their counts, what each path answered, and the hosted part at half price', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-status',
      emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 1 },
      overrides: HOSTED,
    });
    const all = requests(201);
    // The same requests twice: once through the hosted API, once live (the emulator's replies, and
    // so their usage, depend on the prompt only).
    const hosted = await submitBatch(rig.runtime, {
      input: jsonlSource(all, 'hosted.jsonl'),
      via: 'batches',
      batchId: 'batch_hosted_display',
    });
    const live = await submitBatch(rig.runtime, {
      input: jsonlSource(all, 'live.jsonl'),
      batchId: 'batch_live_display',
    });
    await rig.startWorker();
    for (const id of [hosted.batchId, live.batchId]) {
      await waitForBatch(rig.runtime, id, { pollMs: 100, signal: AbortSignal.timeout(60_000) });
    }
    const h = await status(hosted.batchId);
    const l = await status(live.batchId);

    // JSON: the path, and the hosted batches as the emulator knows them.
    expect(h).toMatchObject({
      processing_status: 'ended',
      via: 'batches',
      route: 'hosted',
      deadline: null,
      switched_at: null,
      served: { live: 1, hosted: 200 },
      paused: [],
    });
    expect(h.hosted?.held).toEqual([]);
    expect(h.hosted?.batches).toHaveLength(2);
    for (const b of h.hosted!.batches) {
      expect(b).toMatchObject({
        state: 'done',
        processing_status: 'ended',
        requests: 100,
        request_counts: { processing: 0, succeeded: 100, errored: 0, canceled: 0, expired: 0 },
      });
      expect(b.created_at).not.toBeNull();
      expect(b.ended_at).not.toBeNull();
    }
    const ids = h.hosted!.batches.map((b) => b.hosted_id!).sort();
    expect(ids).toEqual(await emulatorBatchIds());
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(2);
    // A live batch reads no chunks and shows no hosted part.
    expect(l).toMatchObject({ via: 'live', route: 'live', hosted: null, served: { live: 201, hosted: 0 } });

    // Cost: the same usage, the hosted part at half the list price.
    expect(h.usage).toEqual(l.usage);
    const price = findPrice(DEFAULT_PRICE_TABLE, MODEL)!;
    const listCost = costAt(price, l.usage);
    const hostedList = costAt(price, h.usage_hosted);
    expect(hostedList).toBeGreaterThan(0);
    expect(l.estimated_cost).toMatchObject({ exact: true, hosted_usd: 0 });
    expect(l.estimated_cost.usd).toBeCloseTo(listCost, 9);
    expect(h.estimated_cost.hosted_usd).toBeCloseTo(hostedList / 2, 9);
    expect(h.estimated_cost.usd).toBeCloseTo(listCost - hostedList / 2, 9);

    // Text status.
    const text = formatBatchStatus(h);
    expect(text).toContain('path        via batches');
    expect(text).toContain('answered    1 live, 200 hosted');
    for (const b of h.hosted!.batches) {
      expect(text).toMatch(
        new RegExp(
          `chunk ${b.chunk} {2}${b.hosted_id} {2}ended \\(results in\\): 100 requests; 100 succeeded, 0 errored, 0 canceled, 0 expired`,
        ),
      );
    }
    expect(text).toContain(
      `estimate    ~$${h.estimated_cost.usd!.toFixed(4)} at the prices frozen at submit; of which hosted at half price: $${h.estimated_cost.hosted_usd!.toFixed(4)}`,
    );
    expect(formatBatchStatus(l)).not.toContain('path ');
    const table = formatBatchTable(await listBatchStatuses(rig.runtime));
    expect(table).toMatch(/^BATCH .* VIA /);
    expect(table).toMatch(new RegExp(`${hosted.batchId} +ended .* batches `));

    // The batch page.
    const html = await page();
    for (const id of ids) expect(html).toContain(`data-hosted-id="${id}"`);
    expect(html).toContain('data-path="batches"');
    expect(html).toMatch(/data-served="live">1<\/b>/);
    expect(html).toMatch(/data-served="hosted">200<\/b>/);
    expect(html).toContain(`data-cost-hosted>${usd(h.estimated_cost.hosted_usd!)}`);
    expect(html).toContain(`data-cost>${usd(h.estimated_cost.usd!)}`);

    // /metrics.
    const sample = await metrics();
    expect(sample('claude_batch_hosted_batches', { state: 'done' })).toBe(2);
    expect(sample('claude_batch_hosted_batches', { state: 'created' })).toBe(0);
    expect(sample('claude_batch_hosted_requests', { state: 'succeeded' })).toBe(200);
    expect(sample('claude_batch_hosted_requests', { state: 'processing' })).toBe(0);
    expect(sample('claude_batch_requests_served', { path: 'live' })).toBe(202);
    expect(sample('claude_batch_requests_served', { path: 'hosted' })).toBe(200);
    expect(sample('claude_batch_estimated_cost_usd')).toBeCloseTo(
      h.estimated_cost.usd! + l.estimated_cost.usd!,
      6,
    );
  }, 90_000);

  it('show a hosted batch in progress, then its chunk held for an operator as a pause with the fix', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-held',
      // Hosted batches wait a minute before they start: the chunk stays in progress.
      emulator: { batchesStartDelayMs: 60_000, batchesProcessingMs: 1 },
      overrides: HOSTED,
    });
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests(51)), via: 'batches' });
    const worker = await rig.startWorker();
    const running = await vi.waitFor(
      async () => {
        const s = await status(batchId);
        expect(s.hosted?.batches[0]?.state).toBe('created');
        return s;
      },
      { timeout: 30_000, interval: 50 },
    );
    const [hostedId] = await emulatorBatchIds();
    // Requests in an open chunk count as processing: the batch cannot read as ended.
    expect(running).toMatchObject({
      processing_status: 'in_progress',
      request_counts: { processing: 50, succeeded: 1 },
      served: { live: 1, hosted: 0 },
      hosted: {
        batches: [
          {
            chunk: 1,
            hosted_id: hostedId,
            state: 'created',
            processing_status: 'in_progress',
            requests: 50,
            request_counts: { processing: 50, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
            ended_at: null,
          },
        ],
        held: [],
      },
    });
    expect(formatBatchStatus(running)).toContain(
      `chunk 1  ${hostedId}  in_progress: 50 requests; 50 processing`,
    );
    let sample = await metrics();
    expect(sample('claude_batch_hosted_batches', { state: 'created' })).toBe(1);
    expect(sample('claude_batch_hosted_requests', { state: 'processing' })).toBe(50);

    // Someone deletes the hosted batch behind the runner's back (cancel, then delete once it ended):
    // the next poll finds it gone and holds the chunk for an operator.
    await worker.close();
    const client = new Anthropic({ apiKey: rig.apiKey, baseURL: rig.emulator.url, maxRetries: 0 });
    await client.messages.batches.cancel(hostedId!);
    await vi.waitFor(
      async () => expect((await client.messages.batches.retrieve(hostedId!)).processing_status).toBe('ended'),
      { timeout: 10_000, interval: 20 },
    );
    await client.messages.batches.delete(hostedId!);
    await rig.startWorker();

    const events = watchBatch(rig.runtime, batchId, { intervalMs: 50, signal: AbortSignal.timeout(30_000) });
    let pausedEvent: { reason: BatchStatus['paused'][number] } | undefined;
    for await (const event of events) {
      if (event.type === 'paused') {
        pausedEvent = event;
        break;
      }
    }
    expect(pausedEvent?.reason).toMatchObject({ scope: 'batch', reason: 'hosted_chunk_held', chunk: 1 });
    const held = await status(batchId);
    expect(held.processing_status).toBe('paused');
    expect(held.request_counts.processing).toBe(50);
    expect(held.hosted?.held).toEqual([
      {
        chunk: 1,
        reason: expect.stringMatching(/no longer knows its hosted batch/),
        candidates: [],
        fix: expect.stringContaining(`claude-batch hosted settle ${batchId} 1`),
        since: expect.any(String),
      },
    ]);
    const pause = held.paused.find((p) => p.reason === 'hosted_chunk_held');
    expect(pause).toMatchObject({ scope: 'batch', chunk: 1, candidates: [], fix: held.hosted!.held[0]!.fix });
    expect(pause?.message).toMatch(/^hosted chunk 1 \(50 requests\) waits for an operator: /);

    const text = formatBatchStatus(held);
    expect(text).toContain(`PAUSED      hosted chunk 1 held for an operator since ${pause!.since}`);
    expect(text).toContain(`fix: ${pause!.fix}`);
    expect(text).toContain(`chunk 1  ${hostedId}  HELD for an operator: 50 requests`);
    // Candidates, when the runner found several hosted batches that may be the chunk's.
    expect(
      formatBatchStatus({
        ...held,
        paused: [{ ...pause!, candidates: ['msgbatch_a', 'msgbatch_b'] }],
      }),
    ).toContain('candidates: msgbatch_a, msgbatch_b');

    const html = await page();
    expect(html).toContain('id="hosted-held"');
    expect(html).toContain(`data-hosted-held="${batchId}"`);
    expect(html).toContain('data-batch-pause="hosted_chunk_held"');
    expect(html).toContain(`claude-batch hosted settle ${batchId} 1 --adopt &lt;hosted id&gt;`);
    expect(html).not.toContain('<hosted id>');

    sample = await metrics();
    expect(sample('claude_batch_hosted_batches', { state: 'held' })).toBe(1);
    expect(sample('claude_batch_hosted_batches', { state: 'created' })).toBe(0);
    expect(sample('claude_batch_batch_paused', { batch: batchId, reason: 'hosted_chunk_held' })).toBe(1);
  }, 90_000);

  it('show an auto batch that moved to the live path before its deadline, and when', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-auto',
      // Hosted batches start a minute late: only the live path can meet the deadline.
      emulator: { batchesStartDelayMs: 60_000, batchesProcessingMs: 1 },
      overrides: { ...HOSTED, hostedCancelMs: '1500', autoLiveRpm: '60000' },
    });
    // The switch comes 1.5 s (the planned cancel-to-end time) plus the runner's own delays (two 1 s
    // rounds and a 50 ms poll) before it: about 4.4 s after the submit, once the chunk is created.
    const deadline = new Date(Date.now() + 8_000);
    const { batchId } = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(21)),
      via: 'auto',
      deadline,
      routePlan: { liveRatePerSec: 1_000, cancelToEndMs: 1_500 },
    });
    expect((await status(batchId)).route).toBe('hosted');
    await rig.startWorker();
    const final = await waitForBatch(rig.runtime, batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(final).toMatchObject({
      processing_status: 'ended',
      via: 'auto',
      route: 'live',
      deadline: deadline.toISOString(),
      served: { live: 21, hosted: 0 },
    });
    expect(final.switched_at).not.toBeNull();
    expect(Date.parse(final.switched_at!)).toBeLessThan(deadline.getTime());
    expect(final.hosted?.batches).toMatchObject([
      { chunk: 1, state: 'done', processing_status: 'ended', request_counts: { canceled: 20 } },
    ]);
    expect(final.estimated_cost.hosted_usd).toBe(0);

    const text = formatBatchStatus(final, deadline.getTime() + 60_000);
    expect(text).toContain(`path        via auto → live since ${final.switched_at}`);
    expect(text).toContain(`deadline    ${deadline.toISOString()} (passed 1m00s ago)`);
    expect(text).toContain('answered    21 live, 0 hosted');
    expect(formatBatchStatus(final, deadline.getTime() - 90_000)).toContain('(1m30s left)');
    const html = await page();
    expect(html).toContain('data-path="auto" data-route="live"');
    expect(html).toContain(`data-deadline>${deadline.toISOString()}`);
  }, 60_000);
});
