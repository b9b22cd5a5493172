import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputSource } from '../../../src/batch/input-source.js';
import {
  DEFAULT_PRICE_TABLE,
  PriceTableError,
  estimateCost,
  findPrice,
  loadPriceTable,
  startDashboard,
  type RunningDashboard,
} from '../../../src/dashboard/index.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { erroredLine } from '../../../src/store/result-line.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { tripModelBreaker } from './fixtures.js';

const HOSTILE_SOURCE = '<script>alert("source")</script>.jsonl';
const HOSTILE_TYPE = '<img src=x onerror=alert(1)>';
const HOSTILE_MESSAGE = '</td><script>alert("breaker")</script>';

let runtime: Runtime;
let dashboard: RunningDashboard;
let dir: string;

beforeAll(async () => {
  runtime = await testRuntime('dash-page');
  dir = await mkdtemp(join(tmpdir(), 'cb-dashboard-page-'));
  const lines = ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-haiku-4-5', 'claude-haiku-4-5']
    .map((model, i) =>
      JSON.stringify({
        custom_id: `m${i}`,
        params: { model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
      }),
    )
    .join('\n');
  const { batchId } = await submitBatch(runtime, {
    input: inputSource(HOSTILE_SOURCE, async function* () {
      yield lines;
    }),
    batchId: 'batch_hostile',
  });
  await runtime.store.finalize(batchId, 'm0', 0, {
    kind: 'errored',
    line: erroredLine('m0', HOSTILE_TYPE, 'x', null),
    errorType: HOSTILE_TYPE,
    usage: { input_tokens: 1_000_000, output_tokens: 0 },
  });
  await tripModelBreaker(runtime, 'claude-sonnet-4-5', HOSTILE_MESSAGE);
  const pricesFile = join(dir, 'prices.json');
  await writeFile(
    pricesFile,
    JSON.stringify({ models: [{ match: 'claude-haiku-4-5', input: 2, output: 10 }] }),
  );
  dashboard = await startDashboard(runtime, {
    port: 0,
    priceTable: await loadPriceTable(pricesFile),
    refreshSeconds: 3,
  });
});

afterAll(async () => {
  await dashboard?.close();
  if (runtime) await disposeRuntime(runtime);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('batch page', () => {
  it('escapes everything that comes from Redis', async () => {
    const res = await fetch(dashboard.url);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;script&gt;alert(&quot;source&quot;)&lt;/script&gt;.jsonl');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('&lt;/td&gt;&lt;script&gt;alert(&quot;breaker&quot;)&lt;/script&gt;');
    expect(page).toMatch(/<meta http-equiv="refresh" content="3" ?\/?>/);
    // An error type the table does not know still gets a pointer.
    expect(page).toContain('Not in the error table');
  });

  it('estimates cost from the price table (a file first, then the built-in prices)', async () => {
    const page = await (await fetch(dashboard.url)).text();
    // 1M input tokens; rates averaged by requests: 1/4 Sonnet ($3), 3/4 Haiku from the file ($2).
    expect(page).toContain('$2.25 (approx.)');
    expect(page).toContain('prices: ');
    expect(findPrice(DEFAULT_PRICE_TABLE, 'claude-opus-4-1-20250805')?.input).toBe(15);
    expect(findPrice(DEFAULT_PRICE_TABLE, 'claude-opus-4-6')?.input).toBe(5);
    expect(findPrice(DEFAULT_PRICE_TABLE, 'claude-sonnet-4-6')?.output).toBe(15);
    expect(findPrice(DEFAULT_PRICE_TABLE, 'gpt-4')).toBeNull();
    const usage = {
      input_tokens: 0,
      output_tokens: 1_000_000,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    expect(estimateCost(usage, { 'claude-haiku-4-5': 3 }, DEFAULT_PRICE_TABLE)).toEqual({
      usd: 5,
      exact: true,
      unpriced: [],
    });
    expect(estimateCost(usage, { 'my-model': 3 }, DEFAULT_PRICE_TABLE)).toEqual({
      usd: null,
      exact: false,
      unpriced: ['my-model'],
    });

    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ models: [{ match: '', input: 1, output: 1 }] }));
    await expect(loadPriceTable(bad)).rejects.toThrow(PriceTableError);
    await expect(loadPriceTable(join(dir, 'missing.json'))).rejects.toThrow(/cannot read prices file/);
  });
});
