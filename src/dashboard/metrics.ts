import type { BudgetClassSnapshot, BudgetSnapshot } from '../limits/index.js';
import type { Logger } from '../logger.js';
import type { ChunkState } from '../hosted/chunks.js';
import type { HostedCounts } from '../hosted/hosted-api.js';
import type { ProcessingStatus } from '../operations/batch-status.js';
import type { DashboardSnapshot } from './dashboard-data.js';
import { estimateBatchCost, type PriceTable } from '../pricing/price-table.js';
import { formatMetrics, type MetricFamily, type Sample } from './prometheus-text.js';

/** Returns the shared rate budget's current state (e.g. `SharedRateBudgetApi.snapshot` of src/limits). */
export type BudgetSnapshotProvider = () => Promise<BudgetSnapshot>;

const PROCESSING_STATUSES: readonly ProcessingStatus[] = ['in_progress', 'paused', 'canceling', 'ended'];
const OUTCOMES = ['succeeded', 'errored', 'canceled'] as const;
const CHUNK_STATES: readonly ChunkState[] = [
  'packing',
  'packed',
  'creating',
  'created',
  'ended',
  'done',
  'held',
];
const HOSTED_REQUEST_STATES: readonly (keyof HostedCounts)[] = [
  'processing',
  'succeeded',
  'errored',
  'canceled',
  'expired',
];
const TOKEN_KINDS = [
  ['input', 'input_tokens'],
  ['output', 'output_tokens'],
  ['cache_creation_input', 'cache_creation_input_tokens'],
  ['cache_read_input', 'cache_read_input_tokens'],
] as const;

function byPrefix(stats: Record<string, number>, prefix: string, label: string): Sample[] {
  return Object.entries(stats)
    .filter(([field]) => field.startsWith(prefix))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([field, value]) => ({ labels: { [label]: field.slice(prefix.length) }, value }));
}

/** The families of the runner's counters, queues, breakers and batches. */
function runnerFamilies(
  stats: Record<string, number>,
  snapshot: DashboardSnapshot,
  prices: PriceTable,
): MetricFamily[] {
  const stat = (field: string) => stats[field] ?? 0;
  const families: MetricFamily[] = [
    {
      name: 'claude_batch_requests_total',
      help: 'Requests that ended, by outcome (succeeded, errored, canceled).',
      type: 'counter',
      samples: OUTCOMES.map((outcome) => ({ labels: { outcome }, value: stat(outcome) })),
    },
    {
      name: 'claude_batch_errors_total',
      help: 'Requests that ended errored, by API error type.',
      type: 'counter',
      samples: byPrefix(stats, 'errored:', 'type'),
    },
    {
      name: 'claude_batch_retries_total',
      help: 'Failed API calls that were retried, by API error type.',
      type: 'counter',
      samples: byPrefix(stats, 'retried:', 'type'),
    },
    {
      name: 'claude_batch_api_calls_total',
      help: 'Calls made to the Messages API.',
      type: 'counter',
      samples: [{ value: stat('calls') }],
    },
    {
      name: 'claude_batch_maybe_billed_total',
      help: 'Retries sent after a timeout or cut connection: each may have been processed and billed twice.',
      type: 'counter',
      samples: [{ value: stat('maybe_billed') }],
    },
    {
      name: 'claude_batch_budget_wait_seconds_total',
      help: 'Time requests spent waiting for the shared rate budget before being sent.',
      type: 'counter',
      samples: [{ value: stat('budget_wait_ms') / 1000 }],
    },
    {
      name: 'claude_batch_tokens_total',
      help: 'Tokens the API reported as used, by kind (input, output, cache_creation_input, cache_read_input).',
      type: 'counter',
      samples: TOKEN_KINDS.map(([kind, field]) => ({ labels: { kind }, value: stat(field) })),
    },
    {
      name: 'claude_batch_truncated_total',
      help: 'Replies cut off at max_tokens (stop_reason max_tokens).',
      type: 'counter',
      samples: [{ value: stat('truncated') }],
    },
    {
      name: 'claude_batch_reconciler_repairs_total',
      help: 'Requests the reconciler repaired, by kind (lost, canary_released, held_released, failed_outcome, dead_letter_finalized, requeued).',
      type: 'counter',
      samples: byPrefix(stats, 'reconciled:', 'kind'),
    },
    {
      name: 'claude_batch_refused_total',
      help: 'Replies with stop_reason refusal.',
      type: 'counter',
      samples: [{ value: stat('refused') }],
    },
  ];

  const queues = [snapshot.queues.requests, snapshot.queues.deadLetters];
  families.push(
    {
      name: 'claude_batch_queue_jobs',
      help: 'Jobs in each BullMQ queue by state (the dead-letter queue keeps its entries waiting).',
      type: 'gauge',
      samples: queues.flatMap((q) =>
        Object.entries(q.counts)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([state, value]) => ({ labels: { queue: q.name, state }, value })),
      ),
    },
    {
      name: 'claude_batch_requests_held',
      help: "Requests submitted and not yet jobs in the requests queue: held behind their model's canary or for their batch's turn (fair share).",
      type: 'gauge',
      samples: [{ value: snapshot.held }],
    },
    {
      name: 'claude_batch_queue_paused',
      help: '1 while the queue is paused (by the key breaker or an operator).',
      type: 'gauge',
      samples: queues.map((q) => ({ labels: { queue: q.name }, value: q.paused ? 1 : 0 })),
    },
  );

  const key = snapshot.breakers.key;
  families.push({
    name: 'claude_batch_key_breaker_open',
    help: '1 while the key-wide breaker holds the queue paused, labelled with the error type that tripped it and the condition (billing, auth, spend_cap).',
    type: 'gauge',
    samples: [
      key ? { labels: { type: key.type, condition: key.condition ?? 'manual' }, value: 1 } : { value: 0 },
    ],
  });

  const open = new Map(snapshot.breakers.models.map((b) => [b.model, b]));
  const models = new Set<string>(open.keys());
  for (const batch of snapshot.batches) for (const model of Object.keys(batch.models)) models.add(model);
  families.push({
    name: 'claude_batch_model_breaker_open',
    help: '1 while the model breaker of a model is open (its requests are dead-lettered unsent); 0 for other models of known batches.',
    type: 'gauge',
    samples: [...models].sort().map((model) => ({ labels: { model }, value: open.has(model) ? 1 : 0 })),
  });

  const caps = snapshot.concurrency;
  families.push(
    {
      name: 'claude_batch_concurrency_cap',
      help: 'Requests of a model class allowed in flight at once for an API key, learned from the API concurrency 429s and raised by probes (absent until one is seen).',
      type: 'gauge',
      samples: caps
        .filter((c) => c.learned !== null)
        .map((c) => ({ labels: { account: c.account, class: c.class }, value: c.learned! })),
    },
    {
      name: 'claude_batch_concurrency_in_flight',
      help: 'Requests of a model class in flight now (in-flight leases held), once a concurrency limit is known.',
      type: 'gauge',
      samples: caps.map((c) => ({ labels: { account: c.account, class: c.class }, value: c.in_flight })),
    },
    {
      name: 'claude_batch_concurrency_probes_total',
      help: 'Upward probes of the in-flight cap, by result (held, or put_back after a 429).',
      type: 'counter',
      samples: caps.flatMap((c) => [
        { labels: { account: c.account, class: c.class, result: 'put_back' }, value: c.failed_probes },
        { labels: { account: c.account, class: c.class, result: 'held' }, value: c.probes - c.failed_probes },
      ]),
    },
  );

  const workers = snapshot.workers;
  families.push(
    {
      name: 'claude_batch_worker_in_flight_cap',
      help: 'Requests a worker process takes at once now: its in-flight cap, sized between a floor and --concurrency.',
      type: 'gauge',
      samples: workers.map((w) => ({ labels: { worker: w.worker }, value: w.concurrency })),
    },
    {
      name: 'claude_batch_worker_latency_seconds',
      help: 'Recent API call latency seen by a worker process (moving average), the other factor of its in-flight cap.',
      type: 'gauge',
      samples: workers
        .filter((w) => w.latency_ms !== null)
        .map((w) => ({ labels: { worker: w.worker }, value: w.latency_ms! / 1000 })),
    },
    {
      name: 'claude_batch_worker_limited_by',
      help: "1 for what limits a worker's requests in flight now: budget, api_concurrency, concurrency (ramping up), ceiling (--concurrency) or idle.",
      type: 'gauge',
      samples: workers.map((w) => ({ labels: { worker: w.worker, limiter: w.limited_by }, value: 1 })),
    },
  );

  const byStatus = new Map<string, number>(PROCESSING_STATUSES.map((s) => [s, 0]));
  const chunksByState = new Map<string, number>(CHUNK_STATES.map((s) => [s, 0]));
  const hostedRequests = new Map<string, number>(HOSTED_REQUEST_STATES.map((s) => [s, 0]));
  const served = { live: 0, hosted: 0 };
  let cost = 0;
  for (const batch of snapshot.batches) {
    byStatus.set(batch.processing_status, (byStatus.get(batch.processing_status) ?? 0) + 1);
    cost += estimateBatchCost(batch, prices).usd ?? 0;
    served.live += batch.served.live;
    served.hosted += batch.served.hosted;
    for (const chunk of batch.hosted?.batches ?? []) {
      chunksByState.set(chunk.state, (chunksByState.get(chunk.state) ?? 0) + 1);
      const counts = chunk.request_counts;
      if (!counts) continue;
      for (const state of HOSTED_REQUEST_STATES) {
        hostedRequests.set(state, (hostedRequests.get(state) ?? 0) + counts[state]);
      }
    }
  }
  families.push(
    {
      name: 'claude_batch_batches',
      help: 'Batches under the prefix by processing_status.',
      type: 'gauge',
      samples: [...byStatus].map(([processing_status, value]) => ({ labels: { processing_status }, value })),
    },
    {
      name: 'claude_batch_requests_served',
      help: 'Requests of the batches under the prefix answered (succeeded or errored), by path: live (the Messages API) or hosted (the Message Batches API).',
      type: 'gauge',
      samples: (['live', 'hosted'] as const).map((path) => ({ labels: { path }, value: served[path] })),
    },
    {
      name: 'claude_batch_hosted_batches',
      help: "Chunks of the batches' requests sent to the hosted Message Batches API, by state: packing, packed, creating (create under way), created (polled), ended (results downloading), done, held (waiting for an operator).",
      type: 'gauge',
      samples: [...chunksByState].map(([state, value]) => ({ labels: { state }, value })),
    },
    {
      name: 'claude_batch_hosted_requests',
      help: "Requests of the hosted batches by the API's request_counts as last polled (processing until a hosted batch ends, then succeeded, errored, canceled, expired).",
      type: 'gauge',
      samples: [...hostedRequests].map(([state, value]) => ({ labels: { state }, value })),
    },
    {
      name: 'claude_batch_estimated_cost_usd',
      help: 'Estimated cost of the usage of the batches under the prefix, from the dashboard price table, the hosted answers at half price (USD).',
      type: 'gauge',
      samples: [{ value: Math.round(cost * 1e6) / 1e6 }],
    },
    {
      name: 'claude_batch_cost_usd',
      help: 'The cost ledger of each batch with a ceiling (USD): kind spent (settled), reserved (worst cases in flight), ceiling.',
      type: 'gauge',
      samples: snapshot.batches.flatMap((batch) =>
        batch.cost
          ? [
              { labels: { batch: batch.id, kind: 'spent' }, value: batch.cost.spent_usd },
              { labels: { batch: batch.id, kind: 'reserved' }, value: batch.cost.reserved_usd },
              ...(batch.cost.ceiling_usd === null
                ? []
                : [{ labels: { batch: batch.id, kind: 'ceiling' }, value: batch.cost.ceiling_usd }]),
            ]
          : [],
      ),
    },
    {
      name: 'claude_batch_cache_saved_usd',
      help: 'What prompt caching saved each batch that used it, at its frozen prices (USD; negative while writes outweigh reads).',
      type: 'gauge',
      samples: snapshot.batches.flatMap((batch) =>
        batch.cache?.saved_usd != null ? [{ labels: { batch: batch.id }, value: batch.cache.saved_usd }] : [],
      ),
    },
    {
      name: 'claude_batch_cache_read_share',
      help: "Of each batch's prompt tokens, the share read from the cache (0 to 1).",
      type: 'gauge',
      samples: snapshot.batches.flatMap((batch) =>
        batch.cache ? [{ labels: { batch: batch.id }, value: batch.cache.read_share }] : [],
      ),
    },
    {
      name: 'claude_batch_batch_paused',
      help: "1 while a batch is paused on its own, by reason (cost_ceiling, hosted_chunk_held: a hosted chunk waits for an operator); the queue's pause is claude_batch_queue_paused.",
      type: 'gauge',
      // One series per reason, however many chunks of a batch are held: a label set must not repeat.
      samples: snapshot.batches.flatMap((batch) =>
        [...new Set(batch.paused.filter((p) => p.scope === 'batch').map((p) => p.reason))].map((reason) => ({
          labels: { batch: batch.id, reason },
          value: 1,
        })),
      ),
    },
  );
  return families;
}

const DIMENSIONS = [
  ['rpm', 'requests'],
  ['itpm', 'inputTokens'],
  ['otpm', 'outputTokens'],
] as const satisfies ReadonlyArray<readonly [string, keyof BudgetClassSnapshot]>;

/** The rate budget's gauges, from its typed snapshot: one sample per class and dimension in force. */
function budgetFamilies(snapshot: BudgetSnapshot): MetricFamily[] {
  const limit: Sample[] = [];
  const capacity: Sample[] = [];
  const level: Sample[] = [];
  const hold: Sample[] = [];
  for (const cls of snapshot.classes) {
    for (const [dimension, field] of DIMENSIONS) {
      const dim = cls[field];
      if (!dim) continue;
      const labels = { class: cls.name, dimension };
      limit.push({ labels: { ...labels, source: dim.source }, value: dim.configured });
      capacity.push({ labels, value: dim.capacity });
      if (dim.level !== null) level.push({ labels, value: dim.level });
    }
    hold.push({ labels: { class: cls.name }, value: cls.holdMs / 1000 });
  }
  const families: MetricFamily[] = [
    {
      name: 'claude_batch_budget_limit',
      help: 'Per-minute limit of a budget class (dimension rpm, itpm or otpm), configured or, where none is, learned from the API (source).',
      type: 'gauge',
      samples: limit,
    },
    {
      name: 'claude_batch_budget_capacity',
      help: 'Per-minute limit in force: the configured one, or the lower one the API reported.',
      type: 'gauge',
      samples: capacity,
    },
    {
      name: 'claude_batch_budget_level',
      help: 'Current level of a budget bucket (negative: a debt to repay before the next admission).',
      type: 'gauge',
      samples: level,
    },
    {
      name: 'claude_batch_budget_hold_seconds',
      help: 'Time left of the hold a 429 placed on a budget class.',
      type: 'gauge',
      samples: hold,
    },
  ];
  return families.filter((f) => f.samples.length > 0);
}

export interface RenderMetricsInput {
  stats: Record<string, number>;
  snapshot: DashboardSnapshot;
  prices: PriceTable;
  budgetSnapshot?: BudgetSnapshotProvider | undefined;
  logger?: Logger;
}

/** The whole /metrics body. A failing budget provider leaves its gauges out (and says so); the rest is served. */
export async function renderMetrics(input: RenderMetricsInput): Promise<string> {
  const families = runnerFamilies(input.stats, input.snapshot, input.prices);
  if (input.budgetSnapshot) {
    let ok = 1;
    try {
      families.push(...budgetFamilies(await input.budgetSnapshot()));
    } catch (err) {
      ok = 0;
      input.logger?.warn('dashboard: budget snapshot failed', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
    families.push({
      name: 'claude_batch_budget_snapshot_ok',
      help: '1 if the rate budget could be read for this scrape, 0 if reading it failed.',
      type: 'gauge',
      samples: [{ value: ok }],
    });
  }
  return formatMetrics(families);
}
