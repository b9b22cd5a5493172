import { getBreakerState, type KeyBreakerState } from '../breakers/breaker-state.js';
import { Chunks, type ChunkMeta, type ChunkState } from '../hosted/chunks.js';
import type { HostedCounts } from '../hosted/hosted-api.js';
import type { Route, Via } from '../hosted/route.js';
import { readConcurrencyCaps } from '../limits/in-flight-controller.js';
import { estimateBatchCost, type BatchCostEstimate } from '../pricing/price-table.js';
import { frozenPriceTable, nanoToUsd, parseFrozenPrices } from '../pricing/request-cost.js';
import type { Runtime } from '../runtime.js';
import type { BatchRecord, UsageTotals } from '../store/batch-record.js';
import type { InFlightLimiter, SizerState } from '../worker/concurrency-sizer.js';
import type { ShareReport } from '../worker/dispatcher.js';

/** Where a batch stands, in the Message Batches API's terms plus the runner's own. */
export type ProcessingStatus = 'in_progress' | 'paused' | 'canceling' | 'ended';

/** What `status --json` prints for a batch. */
export interface BatchStatus {
  id: string;
  processing_status: ProcessingStatus;
  request_counts: {
    processing: number;
    succeeded: number;
    errored: number;
    canceled: number;
    expired: number;
  };
  errored_by_type: Record<string, number>;
  /**
   * Errored requests by runner-level condition: `billing` counts credit refusals whatever type the
   * API sent them as (a 400 invalid_request_error "credit balance is too low" among them).
   */
  errored_by_condition: Record<string, number>;
  usage: UsageTotals;
  /** Replies cut off at max_tokens (`stop_reason: max_tokens`). */
  truncated: number;
  /** Replies with `stop_reason: refusal`. */
  refused: number;
  total: number;
  /** `submitting` while a submit is (or was, before it died) still enqueuing; rerun it to resume. */
  submit_state: 'submitting' | 'submitted';
  source: string;
  created_at: string;
  ended_at: string | null;
  models: Record<string, number>;
  /**
   * Why nothing of the batch is sent now, while something holds it: the queue's pause (`scope:
   * 'queue'`: a key-wide breaker or `pause`; `resume` lifts it) and the batch's own (`scope:
   * 'batch'`: its cost ceiling, `resume BATCH --max-cost N` lifts it; a hosted chunk held for an
   * operator, `hosted_chunk_held`, settled by the command in its `fix`), each with its reason,
   * since when and the fix. Empty while it runs (and once it has ended).
   */
  paused: BatchPause[];
  /**
   * Its cost ceiling and spend (issue 15), in USD: settled spend (real usage of the calls that
   * ended; worst case for calls that may have been billed without an answer) and the worst cases
   * reserved by calls in flight. Null for a batch submitted without a ceiling.
   */
  cost: CostStatus | null;
  /**
   * Prompt caching (issue 15): the share of prompt tokens read from the cache, and what caching
   * saved. Null before any token was read from or written to the cache.
   */
  cache: CacheStatus | null;
  /** Canary state per model: `pending` (the rest held until it has an outcome) or `released`. */
  canary: Record<string, string>;
  canceled_at: string | null;
  /** Requests sent again after a timeout or cut connection: each may have been billed twice. */
  maybe_billed: number;
  /**
   * The reconciler (one worker at a time, every `CLAUDE_BATCH_RECONCILE_INTERVAL_MS`): when it last
   * ran under this prefix (null: never), and what it repaired in this batch (kind → requests:
   * `lost` requests whose job was removed behind the runner's back, ended; `canary_released`,
   * `held_released`, `failed_outcome`, `dead_letter_finalized`, `requeued`), and when.
   */
  reconciler: ReconcilerStatus;
  /**
   * The in-flight caps learned from the API's concurrency 429s, per API key used under this prefix
   * and model class (empty while none was seen): shared by every prefix of the key.
   */
  concurrency_caps: ConcurrencyCapStatus[];
  /**
   * The worker processes under this prefix that reported in the last 10 s, and their in-flight
   * sizing: the cap each holds (sized between a floor and `--concurrency` from what it sees), the
   * recent API latency, and what limits it now (budget, api_concurrency, concurrency while it
   * ramps, ceiling, idle).
   */
  workers: WorkerSizeStatus[];
  /** Its fair-share weight against other batches (`--priority`, default 1). */
  priority: number;
  /**
   * How its requests are sent (issue 14): `via` as submitted (`live`, `batches`, `auto`), and the
   * path its requests go to now (`route`: `hosted`, or `live`; an `auto` batch moves to `live` when
   * its deadline comes close, at `switched_at`).
   */
  via: Via;
  route: Route;
  /** The deadline given at submit (RFC 3339), or null. */
  deadline: string | null;
  /** When an `auto` batch gave up on the hosted path and moved to the live one (RFC 3339), or null. */
  switched_at: string | null;
  /** Requests answered (succeeded or errored) by each path. */
  served: { live: number; hosted: number };
  /** Usage of the answers of the hosted API (billed at half price), also counted in `usage`. */
  usage_hosted: UsageTotals;
  /**
   * Its hosted batches (null for a batch on the live path that never had any): one entry per
   * chunk of its requests, from packing to done, and the chunks held for an operator (also listed
   * in `paused`, with the command that settles them).
   */
  hosted: HostedStatus | null;
  /**
   * Its usage priced at the prices frozen at submit, the hosted API's answers at half price
   * (`hosted_usd`, part of `usd`); `exact` false when it mixes models (rates averaged by requests).
   */
  estimated_cost: BatchCostEstimate;
  /**
   * Its turn among the batches running at once, while it still holds requests waiting for one
   * (null before a worker dispatched any, and once all are dispatched): its share of what was sent
   * lately, its rate, how many still wait for a turn, and the time to send its open requests at
   * that rate.
   */
  fair_share: FairShareStatus | null;
}

/**
 * One reason nothing (or part) of a batch is sent now: see {@link BatchStatus.paused}. A hosted
 * chunk held for an operator (`hosted_chunk_held`) holds only its own requests, but the batch
 * cannot end until someone settles it, so it is listed with the pauses.
 */
export type BatchPause =
  | ({ scope: 'queue' } & KeyBreakerState)
  | {
      scope: 'batch';
      reason: 'cost_ceiling';
      message: string;
      /** RFC 3339. */
      since: string;
      fix: string;
      /** Settled spend when it paused (USD). */
      spent_usd: number;
      /** The ceiling it reached (USD). */
      ceiling_usd: number;
    }
  | {
      scope: 'batch';
      reason: 'hosted_chunk_held';
      message: string;
      /** RFC 3339. */
      since: string;
      fix: string;
      /** The chunk held, and the hosted batches that may be its (the ids the fix may adopt). */
      chunk: number;
      candidates: string[];
    };

/** A batch's hosted batches: see {@link BatchStatus.hosted}. */
interface HostedStatus {
  batches: HostedBatchStatus[];
  held: HostedHeldStatus[];
}

/** One chunk of a batch's requests and the hosted batch it became. */
interface HostedBatchStatus {
  chunk: number;
  /** Null until it is created (packing, packed, creating), or when a create was never confirmed. */
  hosted_id: string | null;
  /** The runner's state of the chunk: packing, packed, creating, created, ended, done, held. */
  state: ChunkState;
  /** The API's, as last polled (null before it was created). */
  processing_status: 'in_progress' | 'canceling' | 'ended' | null;
  /** Requests packed into it. */
  requests: number;
  /** The API's counts as last polled (every request `processing` until it ends), or null. */
  request_counts: HostedCounts | null;
  created_at: string | null;
  ended_at: string | null;
}

/** A chunk held for an operator: why, the hosted batches that may be it, and the command that settles it. */
interface HostedHeldStatus {
  chunk: number;
  reason: string;
  candidates: string[];
  fix: string;
  /** RFC 3339. */
  since: string;
}

interface CostStatus {
  ceiling_usd: number | null;
  spent_usd: number;
  reserved_usd: number;
}

interface FairShareStatus {
  /** Its fraction of the requests dispatched lately, across all batches (0 to 1). */
  share: number;
  /** Requests of it dispatched per second (moving average over ~20 s). */
  rate_per_s: number;
  /** Requests still held for its turn. */
  waiting: number;
  /** Seconds to send its open requests at that rate; null while the rate is 0. */
  eta_s: number | null;
}

interface CacheStatus {
  /** Of the prompt tokens (input, cache writes, cache reads), the share read from the cache (0 to 1). */
  read_share: number;
  /**
   * What caching saved against sending the same prompts uncached, at the batch's frozen prices
   * (USD): reads at the cache price instead of the input price, less the writes' premium (at the
   * TTL auto-caching used; 5 minutes otherwise). Rates are averaged by each model's share of the
   * requests when the batch mixes models (usage is kept per batch). Null when a model of the batch
   * has no frozen price.
   */
  saved_usd: number | null;
}

function cacheStatusOf(record: BatchRecord): CacheStatus | null {
  const u = record.usage;
  const prompt = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
  if (u.cache_read_input_tokens + u.cache_creation_input_tokens === 0 || prompt === 0) return null;
  const prices = parseFrozenPrices(record.prices_json);
  const models = Object.entries(record.models);
  const total = models.reduce((sum, [, n]) => sum + Math.max(0, n), 0);
  let perRead = 0;
  let perWrite = 0;
  let priced = models.length > 0 && total > 0;
  for (const [model, n] of models) {
    const price = prices[model];
    if (!price) {
      priced = false;
      break;
    }
    const share = Math.max(0, n) / total;
    const write = record.auto_cache_ttl === '1h' ? price.cache_write_1h : price.cache_write;
    perRead += share * (price.input - price.cache_read);
    perWrite += share * (write - price.input);
  }
  const saved = (u.cache_read_input_tokens * perRead - u.cache_creation_input_tokens * perWrite) / 1_000_000;
  return {
    read_share: Math.round((u.cache_read_input_tokens / prompt) * 1_000) / 1_000,
    saved_usd: priced ? Math.round(saved * 1e6) / 1e6 : null,
  };
}

/** How long a dispatcher's report counts as current. */
const SHARE_REPORT_MS = 10_000;

/** The fair-share reports of the batches, by id, that are current (one HGETALL). */
async function shareReports(runtime: Runtime): Promise<Map<string, ShareReport>> {
  const all = await runtime.redis.hgetall(runtime.keys.shareState());
  const now = Date.now();
  const out = new Map<string, ShareReport>();
  for (const [id, json] of Object.entries(all)) {
    try {
      const report = JSON.parse(json) as ShareReport;
      if (now - report.at <= SHARE_REPORT_MS) out.set(id, report);
    } catch {
      // A damaged report is no report; the dispatcher writes it again within a second.
    }
  }
  return out;
}

function fairShareOf(report: ShareReport | undefined, processing: number): FairShareStatus | null {
  if (!report) return null;
  return {
    share: report.share,
    rate_per_s: report.rate,
    waiting: report.held,
    eta_s: report.rate > 0 ? Math.ceil(processing / report.rate) : null,
  };
}

export interface WorkerSizeStatus {
  /** `host:pid:id`. */
  worker: string;
  /** Requests it takes at once now. */
  concurrency: number;
  /** `--concurrency`: the most it may take. */
  ceiling: number;
  limited_by: InFlightLimiter;
  /** Recent API call latency (moving average, ms); null before its first call. */
  latency_ms: number | null;
}

/** How long a worker's report counts as current. */
const WORKER_REPORT_MS = 10_000;
/** A report older than this is deleted when read (the worker is gone). */
const WORKER_FORGET_MS = 3_600_000;

/** The in-flight sizing of the workers that reported lately (one HGETALL). */
export async function workerSizes(runtime: Runtime): Promise<WorkerSizeStatus[]> {
  const all = await runtime.redis.hgetall(runtime.keys.workerSizes());
  const now = Date.now();
  const out: WorkerSizeStatus[] = [];
  const gone: string[] = [];
  for (const [worker, json] of Object.entries(all)) {
    let r: Partial<SizerState & { at: number }>;
    try {
      r = JSON.parse(json) as Partial<SizerState & { at: number }>;
    } catch {
      gone.push(worker);
      continue;
    }
    const age = now - Number(r.at ?? 0);
    if (age > WORKER_FORGET_MS) gone.push(worker);
    if (age > WORKER_REPORT_MS) continue;
    out.push({
      worker,
      concurrency: Number(r.concurrency ?? 0),
      ceiling: Number(r.ceiling ?? 0),
      limited_by: r.limitedBy ?? 'idle',
      latency_ms: r.latencyMs ?? null,
    });
  }
  if (gone.length > 0) await runtime.redis.hdel(runtime.keys.workerSizes(), ...gone);
  return out.sort((a, b) => a.worker.localeCompare(b.worker));
}

export interface ConcurrencyCapStatus {
  /** The API key's fingerprint (never the key). */
  account: string;
  class: string;
  /** Requests of the class allowed in flight at once, across every process; null: none learned. */
  learned: number | null;
  /** Requests of the class in flight now (leases held). */
  in_flight: number;
  /** Upward probes made, and how many met a 429 and were put back. */
  probes: number;
  failed_probes: number;
  /** Concurrency 429s seen in all. */
  limited: number;
}

interface ReconcilerStatus {
  last_run_at: string | null;
  repaired_at: string | null;
  repaired: Record<string, number>;
}

/** What the status of every batch shares: read once for `status` of all batches. */
interface StatusContext {
  paused: KeyBreakerState | null;
  reconcilerRanAt: string | null;
  concurrencyCaps: ConcurrencyCapStatus[];
  workers: WorkerSizeStatus[];
  shares: Map<string, ShareReport>;
}

function toBatchStatus(
  record: BatchRecord,
  context: StatusContext,
  chunks: readonly ChunkMeta[] | null,
): BatchStatus {
  // Requests in a chunk have no result yet, so they count as processing: a batch with a chunk
  // still open cannot read as ended.
  const ended = record.submit_state === 'submitted' && record.counts.processing <= 0;
  const hosted = chunks === null ? null : hostedStatusOf(chunks);
  const paused: BatchPause[] = ended
    ? []
    : [
        ...(context.paused ? [{ scope: 'queue' as const, ...context.paused }] : []),
        ...batchPauses(record),
        ...heldPauses(chunks ?? []),
      ];
  const processingStatus: ProcessingStatus = ended
    ? 'ended'
    : record.canceled_at
      ? 'canceling'
      : paused.length > 0
        ? 'paused'
        : 'in_progress';
  return {
    id: record.id,
    processing_status: processingStatus,
    request_counts: record.counts,
    errored_by_type: record.errored_by_type,
    errored_by_condition: record.errored_by_condition,
    usage: record.usage,
    truncated: record.truncated,
    refused: record.refused,
    total: record.total,
    submit_state: record.submit_state,
    source: record.source,
    created_at: record.created_at,
    ended_at: ended ? record.ended_at : null,
    models: record.models,
    paused,
    cost: record.cost
      ? {
          ceiling_usd: record.cost.ceiling === null ? null : nanoToUsd(record.cost.ceiling),
          spent_usd: nanoToUsd(record.cost.spent),
          reserved_usd: nanoToUsd(record.cost.reserved),
        }
      : null,
    cache: cacheStatusOf(record),
    canary: record.canary,
    canceled_at: record.canceled_at,
    maybe_billed: record.maybe_billed,
    reconciler: {
      last_run_at: context.reconcilerRanAt,
      repaired_at: record.reconciled_at,
      repaired: record.repaired,
    },
    concurrency_caps: context.concurrencyCaps,
    workers: context.workers,
    priority: record.priority,
    fair_share: ended ? null : fairShareOf(context.shares.get(record.id), record.counts.processing),
    via: record.via,
    route: record.route,
    deadline: record.deadline === null ? null : new Date(record.deadline).toISOString(),
    switched_at: record.switched_at,
    served: record.served,
    usage_hosted: record.usage_hosted,
    hosted,
    estimated_cost: estimateBatchCost(record, frozenPriceTable(record.prices_json)),
  };
}

/** A batch's chunks as its status shows them. */
function hostedStatusOf(chunks: readonly ChunkMeta[]): HostedStatus {
  return {
    batches: chunks.map((c) => ({
      chunk: c.n,
      hosted_id: c.hosted_id ?? null,
      state: c.state,
      processing_status: c.processing_status ?? null,
      requests: c.count,
      request_counts: c.request_counts ?? null,
      created_at: c.created_at ?? null,
      ended_at: c.ended_at ?? null,
    })),
    held: chunks.flatMap((c) =>
      c.state === 'held' && c.held
        ? [
            {
              chunk: c.n,
              reason: c.held.reason,
              candidates: c.held.candidates,
              fix: c.held.fix,
              since: c.held.since,
            },
          ]
        : [],
    ),
  };
}

/** A chunk held for an operator, as a pause of its batch: the batch cannot end until it is settled. */
function heldPauses(chunks: readonly ChunkMeta[]): BatchPause[] {
  return chunks.flatMap((c): BatchPause[] =>
    c.state === 'held' && c.held
      ? [
          {
            scope: 'batch',
            reason: 'hosted_chunk_held',
            message: `hosted chunk ${c.n} (${c.count} requests) waits for an operator: ${c.held.reason}`,
            since: c.held.since,
            fix: c.held.fix,
            chunk: c.n,
            candidates: c.held.candidates,
          },
        ]
      : [],
  );
}

/**
 * The chunks of a batch that may have hosted batches (via `batches` or `auto`, or on the hosted
 * route), or null: a live batch costs no read, so `status` of many live batches stays as cheap.
 */
async function chunksOf(runtime: Runtime, record: BatchRecord): Promise<ChunkMeta[] | null> {
  if (record.via === 'live' && record.route === 'live') return null;
  return new Chunks(runtime).all(record.id);
}

/** The batch's own pauses, from its record (`pause:<reason>` fields). */
function batchPauses(record: BatchRecord): BatchPause[] {
  const out: BatchPause[] = [];
  const cost = record.pauses['cost_ceiling'];
  if (cost) {
    const text = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
    out.push({
      scope: 'batch',
      reason: 'cost_ceiling',
      message: text(cost['message'], 'the batch reached its cost ceiling'),
      since: text(cost['since'], ''),
      fix: text(cost['fix'], `claude-batch resume ${record.id} --max-cost N`),
      spent_usd: nanoToUsd(Number(cost['spent_nano'] ?? 0)),
      ceiling_usd: nanoToUsd(Number(cost['ceiling_nano'] ?? 0)),
    });
  }
  return out;
}

/** The learned in-flight caps of the API keys used under this prefix (a few commands; none when no key learned one). */
export async function concurrencyCaps(runtime: Runtime): Promise<ConcurrencyCapStatus[]> {
  const accounts = (await runtime.redis.smembers(runtime.keys.accounts())).sort();
  return (await readConcurrencyCaps(runtime.redis, accounts)).map((c) => ({
    account: c.accountId,
    class: c.modelClass,
    learned: c.learned,
    in_flight: c.inFlight,
    probes: c.probes,
    failed_probes: c.failedProbes,
    limited: c.limited,
  }));
}

/** When the reconciler last ran under this prefix, or null. */
async function reconcilerRanAt(runtime: Runtime): Promise<string | null> {
  return runtime.redis.hget(runtime.keys.reconcilerState(), 'last_run_at');
}

/** Why the queue is paused, or null while it runs. */
async function pauseState(runtime: Runtime): Promise<KeyBreakerState | null> {
  const [paused, breakers] = await Promise.all([runtime.requests.isPaused(), getBreakerState(runtime)]);
  if (!paused) return null;
  return (
    breakers.key ?? {
      reason: 'manual',
      type: 'manual',
      error_code: null,
      condition: null,
      message: 'the queue is paused',
      request_id: null,
      since: '',
      fix: 'run `claude-batch resume`',
    }
  );
}

/** What every batch's status shares, read once (a few O(1) commands). */
async function statusContext(runtime: Runtime): Promise<StatusContext> {
  const [paused, ranAt, caps, workers, shares] = await Promise.all([
    pauseState(runtime),
    reconcilerRanAt(runtime),
    concurrencyCaps(runtime),
    workerSizes(runtime),
    shareReports(runtime),
  ]);
  return { paused, reconcilerRanAt: ranAt, concurrencyCaps: caps, workers, shares };
}

/**
 * The status of one batch (O(1): a few commands, whatever its size; one more, its chunks, for a
 * batch that may have hosted batches), or null if unknown.
 */
export async function getBatchStatus(runtime: Runtime, batchId: string): Promise<BatchStatus | null> {
  const [record, context] = await Promise.all([runtime.store.get(batchId), statusContext(runtime)]);
  return record ? toBatchStatus(record, context, await chunksOf(runtime, record)) : null;
}

/** Every batch under the prefix, oldest first. */
export async function listBatchStatuses(runtime: Runtime): Promise<BatchStatus[]> {
  const [ids, context] = await Promise.all([runtime.store.list(), statusContext(runtime)]);
  const records = (await Promise.all(ids.map((id) => runtime.store.get(id)))).filter(
    (r): r is BatchRecord => r !== null,
  );
  const chunks = await Promise.all(records.map((r) => chunksOf(runtime, r)));
  return records.map((r, i) => toBatchStatus(r, context, chunks[i] ?? null));
}
