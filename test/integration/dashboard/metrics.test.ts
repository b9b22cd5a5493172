import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load-config.js';
import { startDashboard, type RunningDashboard } from '../../../src/dashboard/index.js';
import { silentLogger } from '../../../src/logger.js';
import { requestJobId } from '../../../src/queue/jobs.js';
import { openRuntime, type Runtime } from '../../../src/runtime.js';
import { disposeRuntime, REDIS_URL, uniquePrefix } from '../../helpers/runtime.js';
import { EXPECTED, MODEL, seedBatch, tripBillingBreaker, tripModelBreaker, USAGE } from './fixtures.js';

interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
// parse-prometheus-text-format ships no types.
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => ParsedFamily[];

/** A recognisable fake key: it must appear in no response. */
// Built at run time, so no string shaped like a real key is ever committed.
const CANARY_KEY = `sk-ant-${'api03'}-DASHBOARD-CANARY-7f3a9c1e5b2d4f6a8c0e`;
const ODD_CLASS = 'odd "class" \\ with\nnewline';
const ODD_TYPE = 'weird"type\\x';

let runtime: Runtime;
let dashboard: RunningDashboard;
let batchId: string;

beforeAll(async () => {
  const config = loadConfig({
    env: { REDIS_URL, ANTHROPIC_API_KEY: CANARY_KEY },
    overrides: { prefix: uniquePrefix('dash-metrics') },
  });
  runtime = await openRuntime(config, { logger: silentLogger });
  batchId = await seedBatch(runtime);
  await runtime.store.countRetry(ODD_TYPE);
  // An upstream error that echoes the key back: our routes must scrub it.
  await tripBillingBreaker(runtime, `Invalid credit for key ${CANARY_KEY}`);
  await tripModelBreaker(runtime, 'claude-opus-4-1');
  // A worker process's report of its in-flight sizing, as ClaudeWorker writes it every second.
  await runtime.redis.hset(
    runtime.keys.workerSizes(),
    'host-a:4242:abc123',
    JSON.stringify({ concurrency: 48, ceiling: 512, limitedBy: 'budget', latencyMs: 3_200, at: Date.now() }),
  );
  dashboard = await startDashboard(runtime, {
    port: 0,
    budgetSnapshot: async () => ({
      accountId: 'acct',
      at: Date.now(),
      classes: [
        {
          name: 'default',
          match: null,
          key: 'k',
          exists: true,
          holdMs: 1500,
          requests: {
            source: 'configured' as const,
            configured: 50,
            capacity: 50,
            reported: null,
            level: 42,
          },
          inputTokens: {
            source: 'configured' as const,
            configured: 40_000,
            capacity: 30_000,
            reported: 30_000,
            level: -120,
          },
          outputTokens: null,
        },
        {
          name: ODD_CLASS,
          match: 'claude-odd-*',
          key: 'k2',
          exists: false,
          holdMs: 0,
          requests: { source: 'api' as const, configured: 10, capacity: 10, reported: null, level: null },
          inputTokens: null,
          outputTokens: null,
        },
      ],
    }),
  });
});

afterAll(async () => {
  await dashboard?.close();
  if (runtime) await disposeRuntime(runtime);
});

function sample(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.find((f) => f.name === name);
  const found = family?.metrics.find(
    (m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v) &&
      Object.keys(m.labels ?? {}).length === Object.keys(labels).length,
  );
  return found === undefined ? undefined : Number(found.value);
}

describe('/metrics', () => {
  it('serves the Prometheus text format with the runner state', async () => {
    const res = await fetch(`${dashboard.url}metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const families = parsePrometheus(text);
    const byName = new Map(families.map((f) => [f.name, f]));

    for (const family of families) {
      expect(family.help, family.name).not.toBe('');
      expect(['COUNTER', 'GAUGE'], family.name).toContain(family.type);
      expect(text).toContain(`# HELP ${family.name} `);
      expect(text).toContain(`# TYPE ${family.name} ${family.type.toLowerCase()}`);
    }
    for (const name of [
      'claude_batch_requests_total',
      'claude_batch_errors_total',
      'claude_batch_retries_total',
      'claude_batch_api_calls_total',
      'claude_batch_tokens_total',
      'claude_batch_truncated_total',
      'claude_batch_refused_total',
      'claude_batch_maybe_billed_total',
      'claude_batch_reconciler_repairs_total',
      'claude_batch_queue_jobs',
      'claude_batch_queue_paused',
      'claude_batch_key_breaker_open',
      'claude_batch_model_breaker_open',
      'claude_batch_batches',
      'claude_batch_estimated_cost_usd',
      'claude_batch_requests_served',
      'claude_batch_hosted_batches',
      'claude_batch_hosted_requests',
      'claude_batch_budget_limit',
      'claude_batch_budget_level',
      'claude_batch_worker_in_flight_cap',
      'claude_batch_worker_latency_seconds',
      'claude_batch_worker_limited_by',
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(sample(families, 'claude_batch_worker_in_flight_cap', { worker: 'host-a:4242:abc123' })).toBe(48);
    expect(sample(families, 'claude_batch_worker_latency_seconds', { worker: 'host-a:4242:abc123' })).toBe(
      3.2,
    );
    expect(
      sample(families, 'claude_batch_worker_limited_by', { worker: 'host-a:4242:abc123', limiter: 'budget' }),
    ).toBe(1);
    expect(byName.get('claude_batch_requests_total')!.type).toBe('COUNTER');
    expect(byName.get('claude_batch_queue_jobs')!.type).toBe('GAUGE');

    expect(sample(families, 'claude_batch_requests_total', { outcome: 'succeeded' })).toBe(
      EXPECTED.succeeded,
    );
    expect(sample(families, 'claude_batch_requests_total', { outcome: 'errored' })).toBe(EXPECTED.errored);
    expect(sample(families, 'claude_batch_requests_total', { outcome: 'canceled' })).toBe(EXPECTED.canceled);
    for (const [type, n] of Object.entries(EXPECTED.errors)) {
      expect(sample(families, 'claude_batch_errors_total', { type })).toBe(n);
    }
    for (const [type, n] of Object.entries(EXPECTED.retries)) {
      expect(sample(families, 'claude_batch_retries_total', { type })).toBe(n);
    }
    // Label values are escaped and read back exactly.
    expect(sample(families, 'claude_batch_retries_total', { type: ODD_TYPE })).toBe(1);
    expect(sample(families, 'claude_batch_api_calls_total')).toBe(EXPECTED.calls + 1);
    expect(sample(families, 'claude_batch_tokens_total', { kind: 'input' })).toBe(4 * USAGE.input_tokens);
    expect(sample(families, 'claude_batch_tokens_total', { kind: 'output' })).toBe(4 * USAGE.output_tokens);
    expect(sample(families, 'claude_batch_tokens_total', { kind: 'cache_creation_input' })).toBe(
      4 * USAGE.cache_creation_input_tokens,
    );
    expect(sample(families, 'claude_batch_tokens_total', { kind: 'cache_read_input' })).toBe(
      4 * USAGE.cache_read_input_tokens,
    );
    expect(sample(families, 'claude_batch_truncated_total')).toBe(EXPECTED.truncated);
    expect(sample(families, 'claude_batch_refused_total')).toBe(EXPECTED.refused);

    // The 3 open requests sit in the main queue (waiting, or paused).
    const mainQueue = byName
      .get('claude_batch_queue_jobs')!
      .metrics.filter((m) => m.labels?.['queue'] === 'requests')
      .reduce((sum, m) => sum + Number(m.value), 0);
    expect(mainQueue).toBe(EXPECTED.processing);
    // Caching, at the batch's frozen prices (claude-haiku-4-5: input $1, reads $0.10, writes $1.25).
    const reads = 4 * USAGE.cache_read_input_tokens;
    const writes = 4 * USAGE.cache_creation_input_tokens;
    const prompt = 4 * USAGE.input_tokens + reads + writes;
    const batchLabel = { batch: batchId };
    expect(sample(families, 'claude_batch_cache_read_share', batchLabel)).toBeCloseTo(reads / prompt, 3);
    expect(sample(families, 'claude_batch_cache_saved_usd', batchLabel)).toBeCloseTo(
      (reads * 0.9 - writes * 0.25) / 1e6,
      6,
    );
    // None of them held: the fixture released the canary's model and dispatched it all.
    expect(sample(families, 'claude_batch_requests_held')).toBe(0);
    expect(sample(families, 'claude_batch_queue_jobs', { queue: 'dead-letter', state: 'waiting' })).toBe(2);
    expect(sample(families, 'claude_batch_queue_jobs', { queue: 'requests', state: 'active' })).toBe(0);
    expect(sample(families, 'claude_batch_queue_paused', { queue: 'requests' })).toBe(1);
    expect(sample(families, 'claude_batch_queue_paused', { queue: 'dead-letter' })).toBe(0);

    expect(
      sample(families, 'claude_batch_key_breaker_open', { type: 'billing_error', condition: 'billing' }),
    ).toBe(1);
    expect(sample(families, 'claude_batch_model_breaker_open', { model: 'claude-opus-4-1' })).toBe(1);
    expect(sample(families, 'claude_batch_model_breaker_open', { model: MODEL })).toBe(0);

    expect(sample(families, 'claude_batch_batches', { processing_status: 'paused' })).toBe(1);
    expect(sample(families, 'claude_batch_batches', { processing_status: 'in_progress' })).toBe(0);
    expect(sample(families, 'claude_batch_batches', { processing_status: 'ended' })).toBe(0);
    expect(sample(families, 'claude_batch_estimated_cost_usd')).toBeCloseTo(EXPECTED.costUsd, 6);
    // A live batch: nothing hosted, one series per state all the same (a dashboard's series exist before the first hosted batch).
    for (const state of ['packing', 'packed', 'creating', 'created', 'ended', 'done', 'held']) {
      expect(sample(families, 'claude_batch_hosted_batches', { state })).toBe(0);
    }
    for (const state of ['processing', 'succeeded', 'errored', 'canceled', 'expired']) {
      expect(sample(families, 'claude_batch_hosted_requests', { state })).toBe(0);
    }
    expect(sample(families, 'claude_batch_requests_served', { path: 'hosted' })).toBe(0);

    expect(
      sample(families, 'claude_batch_budget_limit', {
        class: 'default',
        dimension: 'rpm',
        source: 'configured',
      }),
    ).toBe(50);
    expect(
      sample(families, 'claude_batch_budget_limit', {
        class: 'default',
        dimension: 'itpm',
        source: 'configured',
      }),
    ).toBe(40_000);
    expect(sample(families, 'claude_batch_budget_capacity', { class: 'default', dimension: 'itpm' })).toBe(
      30_000,
    );
    expect(sample(families, 'claude_batch_budget_level', { class: 'default', dimension: 'rpm' })).toBe(42);
    expect(sample(families, 'claude_batch_budget_level', { class: 'default', dimension: 'itpm' })).toBe(-120);
    expect(sample(families, 'claude_batch_budget_hold_seconds', { class: 'default' })).toBe(1.5);
    expect(
      sample(families, 'claude_batch_budget_limit', { class: ODD_CLASS, dimension: 'rpm', source: 'api' }),
    ).toBe(10);
    // A bucket not created yet has no level to report.
    expect(
      sample(families, 'claude_batch_budget_level', { class: ODD_CLASS, dimension: 'rpm' }),
    ).toBeUndefined();
    expect(sample(families, 'claude_batch_budget_snapshot_ok')).toBe(1);
  });

  it('shows the API key in no response of any route', async () => {
    const dlqJob = requestJobId(batchId, 'req-4', 0);
    const routes = [
      '',
      'api/batches',
      `api/batches/${batchId}`,
      'api/batches/nope',
      'api/breakers',
      'metrics',
      'no/such/route',
      'queues',
      'queues/queue/requests',
      'queues/api/queues',
      'queues/api/queues?activeQueue=dead-letter&status=waiting',
      'queues/api/redis/stats',
      `queues/api/queues/dead-letter/${encodeURIComponent(dlqJob)}`,
    ];
    for (const route of routes) {
      const res = await fetch(`${dashboard.url}${route}`);
      const body = await res.text();
      expect(body, route).not.toContain(CANARY_KEY);
      expect(body, route).not.toContain('DASHBOARD-CANARY');
    }
    // The key was in the breaker's message; our routes show it redacted.
    const breakers = (await (await fetch(`${dashboard.url}api/breakers`)).json()) as {
      key: { message: string };
    };
    expect(breakers.key.message).toBe('Invalid credit for key [redacted]');
    const page = await (await fetch(dashboard.url)).text();
    expect(page).toContain('Invalid credit for key [redacted]');
  });
});
