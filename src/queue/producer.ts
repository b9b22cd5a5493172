import { createHash } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { AutoCachePlanner, applyAutoCache, type AutoCacheDecision } from '../batch/auto-cache.js';
import { formatErrorSummary } from '../batch/input-error.js';
import type { MinCacheableRule } from '../batch/min-cacheable-tokens.js';
import type { MessageParams } from '../batch/types.js';
import { InputValidationError } from '../errors/runner-errors.js';
import { DEFAULT_CHUNK_SIZE, readRequestChunks, type IndexedRequest } from '../batch/read-requests.js';
import { openInput, scanInput, type InputSource, type ModelStats } from '../batch/scan-input.js';
import { CUSTOM_ID_PATTERN } from '../batch/types.js';
import type { RequestDefaults } from '../batch/validate-request.js';
import type { Runtime } from '../runtime.js';
import { MAX_PRIORITY } from '../store/batch-record.js';
import { BatchCostPlan, type SubmitCost } from '../pricing/batch-cost.js';
import type { PriceTable } from '../pricing/price-table.js';

import { canaryField, canaryIdField, releaseHeld } from './canary.js';
import { Holds, SHARE_REASON, type HeldEntry } from './holds.js';
import {
  initialRoute,
  parseDeadline,
  parseVia,
  type Route,
  type RoutePlan,
  type Via,
} from '../hosted/route.js';
import { AUTO_CACHE_FIELD, type AutoCacheNote } from './rewarm.js';
import { requestJob, requestJobId, type RequestJob, type RequestJobData } from './jobs.js';

export interface SubmitOptions {
  /** A path, or `-` for standard input; or an already opened source. */
  input: string | InputSource;
  /** Default: derived from the content, so submitting the same file again resumes that batch. */
  batchId?: string | undefined;
  /** Model, max_tokens and system of shorthand lines. */
  defaults?: RequestDefaults | undefined;
  /** Invalid lines to report (0: all). Default 20. */
  maxErrors?: number | undefined;
  /** Requests per Redis round-trip. Default {@link DEFAULT_CHUNK_SIZE} (250). */
  chunkSize?: number | undefined;
  /** Validate and count only; enqueue nothing. */
  dryRun?: boolean | undefined;
  /**
   * Send one request of each model first and hold the rest until it has an outcome, so a wrong
   * key, an empty balance or a mistyped model costs one dead-letter entry, not the batch.
   * Default true.
   */
  canary?: boolean | undefined;
  /**
   * Fair-share weight against other batches running at the same time: requests are sent
   * round-robin across batches, a batch of priority 2 getting twice the turns of one of priority 1.
   * An integer from 1 to {@link MAX_PRIORITY}. Default 1; given on a resubmit, it re-weights the
   * running batch.
   */
  priority?: number | undefined;
  /**
   * Automatic prompt caching (issue 15): find the prefix most of a model's requests share and mark
   * its end with one `cache_control` breakpoint (5-minute TTL, 1-hour with `maxCost`; the canary,
   * sent first, writes it),
   * leaving requests with their own cache_control, outliers and prefixes under the model's minimum
   * cacheable length as written (src/batch/auto-cache.ts). Part of the batch id. Default true.
   */
  autoCache?: boolean | undefined;
  /** Overrides of the models' minimum cacheable lengths, first match first (src/batch/min-cacheable-tokens.ts). */
  cacheMinTokens?: readonly MinCacheableRule[] | undefined;
  /**
   * Hard cost ceiling of the batch in USD (issue 15; a positive number): before each call a worker
   * reserves the request's worst case at the prices frozen into the batch at submit, and at the
   * ceiling the batch pauses (reason `cost_ceiling`) until `resume BATCH --max-cost N`. Requires a
   * price for every model and refuses requests the price table cannot price (server tools). Set
   * when the batch is created: a resubmit asking for another ceiling is refused. Default none.
   */
  maxCost?: number | undefined;
  /**
   * The path its requests take (issue 14, src/hosted/route.ts): `live` (the Messages API one by one,
   * the default), `batches` (the hosted Message Batches API, at half price, reporting nothing until
   * each hosted batch ends) or `auto` (hosted while `deadline` leaves room to finish live, then
   * live). Each model's canary goes live first either way. Set when the batch is created.
   */
  via?: Via | undefined;
  /**
   * When the batch must be done: a duration from now (`6h`, `90m`), an RFC 3339 time or a Date.
   * `auto` plans by it; a hosted request that expires before it is sent again. Default none.
   */
  deadline?: string | number | Date | undefined;
  /** What `auto` plans with (the live rate, a hosted cancel's time to end). Default: 1,000 RPM, 10 minutes. */
  routePlan?: RoutePlan | undefined;
  /** Prices frozen into the batch (`--prices FILE`). Default: the built-in list prices. */
  prices?: PriceTable | undefined;
  /** Called with the batch id before anything is enqueued, so a killed submit can be resumed. */
  onBatchId?: ((batchId: string) => void) | undefined;
  /** Called after each chunk with the number of requests enqueued so far. */
  onProgress?: ((enqueued: number, total: number) => void) | undefined;
}

export interface SubmitResult {
  batchId: string;
  /** `created` the first time; `resumed` when the batch existed (a resubmit or a resumed submit). */
  outcome: 'created' | 'resumed' | 'dry-run';
  total: number;
  /** Requests enqueued by this call (0 when a complete batch is submitted again). */
  enqueued: number;
  models: Record<string, ModelStats>;
  /** What auto-caching did per model (null with autoCache false). */
  autoCache: AutoCacheDecision | null;
  /** The cost side: the ceiling asked for, the prices' source and each model's worst case (for the dry run). */
  cost: SubmitCost;
}

/**
 * Submits a JSONL file as a batch: validates every line first (nothing is enqueued if any is
 * invalid), then holds them in chunks (see Holds) under job ids derived from batch id + custom_id,
 * for the dispatcher to send in the batch's turn. Safe to run again after a crash or on the same
 * file: it resumes from the last committed chunk; the requests of the chunk that was being written
 * are held again flagged `resumed`, and BullMQ ignores a job id it already holds, so none is sent
 * twice.
 */
export async function submitBatch(runtime: Runtime, options: SubmitOptions): Promise<SubmitResult> {
  const source = typeof options.input === 'string' ? await openInput(options.input) : options.input;
  try {
    const { priority } = options;
    if (
      priority !== undefined &&
      !(Number.isInteger(priority) && priority >= 1 && priority <= MAX_PRIORITY)
    ) {
      throw new InputValidationError(
        source.name,
        [],
        `--priority: must be an integer from 1 to ${MAX_PRIORITY}, got ${JSON.stringify(priority)}`,
      );
    }
    let via: Via;
    let deadline: number | null;
    try {
      via = options.via === undefined ? 'live' : parseVia(options.via);
      deadline = options.deadline === undefined ? null : parseDeadline(options.deadline);
    } catch (err) {
      throw new InputValidationError(source.name, [], (err as Error).message);
    }
    const defaults = options.defaults ?? {};
    const planner = options.autoCache === false ? null : new AutoCachePlanner();
    const cost = new BatchCostPlan(source.name, options.maxCost, options.prices);
    const scan = await scanInput(source, {
      defaults,
      maxErrors: options.maxErrors ?? 20,
      observe: (params: MessageParams, line: number, customId: string) => {
        planner?.observe(params);
        cost.observe(params, line, customId);
      },
    });
    if (scan.errorCount > 0) {
      throw new InputValidationError(
        source.name,
        scan.errors,
        formatErrorSummary(source.name, {
          invalidLines: scan.invalidLines,
          errorCount: scan.errorCount,
          shown: scan.errors.length,
        }),
      );
    }
    if (scan.count === 0) {
      throw new InputValidationError(source.name, [], `${source.name}: no requests (the input is empty)`);
    }
    cost.check(Object.keys(scan.models));
    // A batch with a cost ceiling may pause until an operator raises it: its prefix is written with
    // the 1-hour TTL (2x input instead of 1.25x, once per model and hour), so a pause of up to an
    // hour does not lose it. Otherwise 5 minutes, each hit refreshing it.
    // A hosted batch may wait hours at the API too: Anthropic suggests the 1-hour TTL for batches
    // that share a prefix (anthropic-api.md, Message Batches API).
    const ttl = options.maxCost === undefined && via === 'live' ? '5m' : '1h';
    const autoCache = planner?.decide({ ttl, minTokens: options.cacheMinTokens ?? [] }) ?? null;
    // The batch is the input as sent: with auto-caching, a batch of its own (its id and record).
    // The TTL counts only where a breakpoint is placed: the same file with and without --max-cost
    // is one batch when nothing is cached (a resubmit then says the ceiling differs).
    const placed = autoCache && Object.values(autoCache.models).some((m) => m.outcome === 'breakpoint');
    const fingerprint = autoCache
      ? createHash('sha256')
          .update(`${scan.fingerprint}\nauto-cache:${placed ? autoCache.ttl : '5m'}`)
          .digest('hex')
      : scan.fingerprint;
    const batchId = options.batchId ?? `batch_${fingerprint.slice(0, 24)}`;
    if (!CUSTOM_ID_PATTERN.test(batchId)) {
      throw new InputValidationError(
        source.name,
        [],
        `--batch-id: must match ${CUSTOM_ID_PATTERN.source}, got ${JSON.stringify(batchId.slice(0, 80))}`,
      );
    }
    const models = scan.models;
    if (options.dryRun) {
      return {
        batchId,
        outcome: 'dry-run',
        total: scan.count,
        enqueued: 0,
        models,
        autoCache,
        cost: cost.summary(),
      };
    }

    const created = await runtime.store.createOrResume({
      id: batchId,
      fingerprint,
      total: scan.count,
      source: source.name,
      models: Object.fromEntries(Object.entries(models).map(([model, stats]) => [model, stats.requests])),
      canaryModels: options.canary === false ? [] : Object.keys(models),
      priority,
    });
    await cost.apply(runtime, batchId);
    await recordRoute(runtime, batchId, {
      via,
      deadline,
      route: initialRoute(via, deadline, scan.count, options.routePlan ?? DEFAULT_ROUTE_PLAN, Date.now()),
    });
    if (autoCache && placed) {
      // What a resume after a long pause reads to write the prefix again first (src/queue/rewarm.ts).
      const cached = Object.entries(autoCache.models).filter(([, m]) => m.outcome === 'breakpoint');
      const note: AutoCacheNote = { ttl: autoCache.ttl, models: cached.map(([model]) => model) };
      await runtime.redis.hset(runtime.keys.batch(batchId), AUTO_CACHE_FIELD, JSON.stringify(note));
    }
    options.onBatchId?.(batchId);
    if (created.submitState === 'submitted') {
      return {
        batchId,
        outcome: 'resumed',
        total: scan.count,
        enqueued: 0,
        models,
        autoCache,
        cost: cost.summary(),
      };
    }

    const resumed = created.outcome === 'resumed';
    const done = resumed ? await runtime.store.enqueuedCount(batchId) : 0;
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const modelNames = Object.keys(models);
    const holds = new Holds(runtime);
    let states = new Map<string, string>();
    // Until the first read, every model may have a pending canary (none with --no-canary).
    let pendingModels = options.canary === false ? [] : modelNames;
    const seenModels = new Set<string>();
    let enqueued = 0;
    let pending: IndexedRequest[] = [];
    let canaries = new Set<string>();
    let from = done;
    // One chunk is written at a time, in order, exactly as if each were awaited in turn; but once a
    // chunk's jobs are on their way to Redis, the next chunk is read (parsed, validated,
    // fingerprinted) while Redis runs them, instead of after.
    const flush = async (
      items: IndexedRequest[],
      chunkCanaries: ReadonlySet<string>,
      complete: boolean,
      sent: () => void,
    ): Promise<void> => {
      if (items.length > 0) {
        // Re-read per chunk while a canary is pending: it may end while a large submit is still
        // enqueuing. A released canary never goes back to pending, so once none is, no more reads
        // (with --no-canary, none at all): one round trip per chunk saved.
        if (pendingModels.length > 0) {
          states = await runtime.store.canaryStates(batchId, modelNames);
          pendingModels = modelNames.filter((m) => states.get(m) === 'pending');
        }
        // Hold reason → held entries. Every request but a canary is held: behind its model's
        // canary while that is pending, else for its batch's share (the dispatcher's turn). Held,
        // a request is a hash entry, not yet a job (see Holds). A request the run that died
        // enqueued under another role is enqueued again under this one's, flagged `resumed`: its
        // job id is the same, so BullMQ ignores it while the first exists, and once that has run,
        // its worker finds the result and does not send it again.
        const held = new Map<string, HeldEntry[]>();
        const canaryJobs: RequestJob[] = [];
        const canaryIds: string[] = [];
        for (const item of items) {
          const model = item.request.params.model;
          const reason = chunkCanaries.has(item.request.custom_id)
            ? null
            : states.get(model) === 'pending'
              ? canaryField(model)
              : SHARE_REASON;
          const original = item.request.params;
          if (autoCache) item.request.params = applyAutoCache(autoCache, original);
          const data = jobData(batchId, created.incarnation, item, resumed, reason === null);
          if (reason === null) {
            canaryJobs.push(requestJob(data, true));
            canaryIds.push(canaryIdField(model), item.request.custom_id);
            continue;
          }
          // Not the canary: it writes the prefix, and pays for it in full.
          if (item.request.params !== original)
            data.cached_prefix = autoCache?.models[model]?.prefixTokens ?? 0;
          const entries = held.get(reason) ?? [];
          entries.push([
            requestJobId(batchId, item.request.custom_id, 0, created.incarnation),
            JSON.stringify(data),
          ]);
          held.set(reason, entries);
        }
        const writes: Promise<unknown>[] = [...held].map(([reason, entries]) =>
          holds.hold(batchId, reason, entries),
        );
        // A canary goes to the front of the queue: the rest of its batch waits for it, and a batch
        // submitted behind a busy one should not wait for the queue ahead before it can start.
        if (canaryJobs.length > 0) writes.push(runtime.requests.addBulk(canaryJobs));
        sent();
        await Promise.all(writes);
        if (canaryIds.length > 0) await runtime.redis.hset(runtime.keys.batch(batchId), ...canaryIds);
      } else sent();
      await runtime.store.commitChunk(
        batchId,
        from,
        items.map((item) => item.request.custom_id),
        complete,
      );
      from += items.length;
      enqueued += items.length;
      options.onProgress?.(from, scan.count);
    };
    let flushing: Promise<void> = Promise.resolve();
    /** Waits for the chunk in flight, then starts writing `pending`; resolves once its jobs are sent. */
    const startFlush = async (last: boolean): Promise<void> => {
      await flushing;
      const items = pending;
      const chunkCanaries = canaries;
      pending = [];
      canaries = new Set();
      let onSent: () => void = () => {};
      const sent = new Promise<void>((resolve) => (onSent = resolve));
      flushing = flush(items, chunkCanaries, last || from + items.length === scan.count, onSent);
      // Awaited later (or by the finally below); a failure must not count as unhandled meanwhile.
      flushing.catch(() => {});
      await Promise.race([sent, flushing]);
      // Let BullMQ build and write the chunk's commands before this process turns to reading.
      await setImmediate();
    };
    try {
      for await (const chunk of readRequestChunks(source, {
        defaults,
        chunkSize,
        expect: { count: scan.count, fingerprint: scan.fingerprint },
      })) {
        for (const item of chunk) {
          const model = item.request.params.model;
          const first = !seenModels.has(model);
          seenModels.add(model);
          if (item.index < done) continue;
          if (first && options.canary !== false) canaries.add(item.request.custom_id);
          pending.push(item);
          if (pending.length >= chunkSize) await startFlush(false);
        }
      }
      await flushing;
      if (pending.length > 0 || from === done) {
        await startFlush(true);
        await flushing;
      }
    } catch (err) {
      // Never leave a chunk in flight behind an error (the input changed). If that chunk failed,
      // its error wins: one chunk at a time, it would have been thrown before reading on.
      await flushing;
      throw err;
    }
    // A canary that ended before its model's last chunk went in would leave those held behind it:
    // release them to the batch's share now (a no-op when nothing is held).
    const final = await runtime.store.canaryStates(batchId, modelNames);
    for (const [model, state] of final) if (state === 'released') await releaseHeld(runtime, batchId, model);
    return {
      batchId,
      outcome: created.outcome,
      total: scan.count,
      enqueued,
      models,
      autoCache,
      cost: cost.summary(),
    };
  } finally {
    await source.close();
  }
}

/** A request's job data (a canary goes straight to the queue; every other request is held). */
function jobData(
  batchId: string,
  incarnation: number,
  item: IndexedRequest,
  resumed: boolean,
  canary: boolean,
): RequestJobData {
  const { custom_id, params } = item.request;
  const data: RequestJobData = { batch_id: batchId, custom_id, index: item.index, gen: 0, params };
  if (incarnation !== 0) data.inc = incarnation;
  if (resumed) data.resumed = true;
  if (canary) data.canary = true;
  return data;
}

/** What `auto` plans with when the caller gives nothing: 1,000 requests a minute live, 10 minutes from cancel to end. */
const DEFAULT_ROUTE_PLAN: RoutePlan = { liveRatePerSec: 1_000 / 60, cancelToEndMs: 600_000 };

/**
 * Records the batch's path once (HSETNX: a resumed submit keeps what the first one chose, and an
 * `auto` batch that went live stays live), before any request is held: the dispatcher leaves a
 * batch on the hosted route to the hosted runner, which finds it in {@link KeyLayout.hostedBatches}.
 */
async function recordRoute(
  runtime: Runtime,
  batchId: string,
  route: { via: Via; deadline: number | null; route: Route },
): Promise<void> {
  const { redis, keys } = runtime;
  const key = keys.batch(batchId);
  const multi = redis.multi().hsetnx(key, 'via', route.via).hsetnx(key, 'route', route.route);
  if (route.deadline !== null) multi.hsetnx(key, 'deadline', String(route.deadline));
  await multi.exec();
  if ((await redis.hget(key, 'route')) === 'hosted') await redis.sadd(keys.hostedBatches(), batchId);
}
