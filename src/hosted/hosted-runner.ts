import { randomUUID } from 'node:crypto';
import type { Alerter } from '../breakers/alert.js';
import { countModelFailure, tripKeyBreaker } from '../breakers/breakers.js';
import { canceledLine, expiredLine, succeededLine } from '../store/result-line.js';
import type { HeldEntry } from '../queue/holds.js';
import { Holds, SHARE_REASON } from '../queue/holds.js';
import { requestJobId, type RequestJobData } from '../queue/jobs.js';
import { modelBreakerMessage, type ModelBreakerState } from '../breakers/breaker-state.js';
import type { ApiFailure } from '../errors/api-failure.js';
import { ruleFor } from '../errors/classify.js';
import type { ErrorRule } from '../errors/error-table.js';
import { retryAfterMs } from '../errors/retry-hints.js';
import { ExpiringLock } from '../redis/expiring-lock.js';
import type { Runtime } from '../runtime.js';
import type { BatchRecord } from '../store/batch-record.js';
import { MAX_PRIORITY } from '../store/batch-record.js';
import { deadLetter, deadLetterEntry } from '../worker/apply-outcome.js';
import type { RetryPolicy } from '../worker/outcome.js';
import { ChunkCeiling } from './chunk-ceiling.js';
import { Chunks, CHUNK_PAGE, countsWithoutMarker, type ChunkMeta } from './chunks.js';
import {
  HostedApiError,
  type HostedApi,
  type HostedBatch,
  type HostedRequest,
  type HostedResultLine,
} from './hosted-api.js';
import { decideLine, type LineOutcome } from './line-outcome.js';
import { switchAt, type RoutePlan } from './route.js';

export interface HostedRunnerOptions {
  api: HostedApi;
  retry: RetryPolicy;
  alert: Alerter;
  /** The API key's fingerprint: a key-wide failure in a result line trips the key's breaker. */
  accountId: string;
  /** Consecutive model-wide failures that open a model's breaker. */
  modelBreakerThreshold: number;
  /** Most requests per hosted batch. Default 100,000 (the API's limit). */
  maxRequests?: number | undefined;
  /** Most bytes per hosted batch (the create body). Default 256,000,000 (the API's limit). */
  maxBytes?: number | undefined;
  /** First wait between two polls of a hosted batch (ms); grows x1.5 to `pollMaxMs`. Default 10,000. */
  pollMinMs?: number | undefined;
  /** Longest wait between two polls (ms). Default 60,000. */
  pollMaxMs?: number | undefined;
  /** What `auto` plans with (live rate, cancel-to-end time). */
  plan: RoutePlan;
  /** How often this process looks for hosted work (ms). Default 1,000. */
  intervalMs?: number | undefined;
  /** Timeout of a create call (ms): the adoption window after a crash reaches this far past the intent. */
  createTimeoutMs?: number | undefined;
  /**
   * How long a batch's hosted lock outlives a process that stopped renewing it (ms): another
   * process takes the batch's chunks over after it. Default 30,000; the worker passes its job lock
   * duration, after which its jobs are taken over too.
   */
  lockTtlMs?: number | undefined;
}

/** Clock skew allowed between this machine and the API when matching creation times (ms). */
const SKEW_MS = 60_000;

/** The settle command of a chunk held for an operator. */
function settleCommand(batchId: string, n: number): string {
  return `claude-batch hosted settle ${batchId} ${n} --adopt <hosted id>   (or --not-created if none was created)`;
}

/**
 * The hosted path (issue 14, docs/hosted-batches.md): in every worker process, one loop that, for
 * each batch on the hosted route or with hosted batches still open, takes the batch's lock (one
 * process per batch, so exactly one per chunk) and moves its chunks along:
 *
 * - **pack**: the batch's share (its requests past their canary) into a chunk of at most
 *   `maxRequests` / `maxBytes`, one script per page (src/hosted/chunks.ts);
 * - **create**: the intent (time, count) is recorded before the create call and the hosted id
 *   right after; a create whose outcome is unknown (a crash, a timeout) is adopted only when
 *   exactly one unclaimed hosted batch matches it, else the chunk is held for an operator;
 * - **poll** with a backoff (x1.5 from `pollMinMs` to `pollMaxMs`) that honours `retry-after`;
 * - **download** the results when it ends: each line through the same error table as the live
 *   path, its result written idempotently before it leaves the chunk, so a download killed midway
 *   resumes without losing or duplicating a line;
 * - **cancel** its hosted batches when the batch is canceled, or when `auto` must finish live.
 */
export class HostedRunner {
  private readonly chunks: Chunks;
  private readonly holds: Holds;
  /** The batches' cost ceilings, for chunks (their worst case at the hosted price). */
  private readonly ceiling: ChunkCeiling;
  private readonly locks = new Map<string, ExpiringLock>();
  private readonly polls = new Map<string, { at: number; waitMs: number }>();
  /** When each trashed hosted batch is next looked at (ms). */
  private readonly trashPolls = new Map<string, number>();
  private readonly maxRequests: number;
  private readonly maxBytes: number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;
  private readonly intervalMs: number;
  private readonly lockTtlMs: number;
  private timer: NodeJS.Timeout | undefined;
  private renewer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  /** Aborts the calls under way when the runner stops. */
  private readonly aborter = new AbortController();
  /** Whether a create was refused with 429 (too many requests queued at the API): no create before this (ms). */
  private createAfter = 0;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: HostedRunnerOptions,
  ) {
    this.chunks = new Chunks(runtime);
    this.holds = new Holds(runtime);
    this.ceiling = new ChunkCeiling(runtime);
    // The limits are the hosted batch's, its marker request included: the chunk packs one less.
    this.maxRequests = Math.max(1, (options.maxRequests ?? 100_000) - 1);
    this.maxBytes = Math.max(1, (options.maxBytes ?? 256_000_000) - MARKER_BYTES);
    this.pollMinMs = options.pollMinMs ?? 10_000;
    this.pollMaxMs = Math.max(this.pollMinMs, options.pollMaxMs ?? 60_000);
    this.intervalMs = options.intervalMs ?? 1_000;
    this.lockTtlMs = options.lockTtlMs ?? 30_000;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.ticking) {
        this.ticking = this.tick()
          .catch((err: unknown) =>
            this.runtime.logger.warn('hosted runner: round failed; trying again', {
              error: (err as Error).message,
            }),
          )
          .finally(() => (this.ticking = undefined));
      }
    }, this.intervalMs);
    this.timer.unref();
    // Locks held are renewed while long steps (a download, a create) run.
    this.renewer = setInterval(() => void this.renewLocks(), this.lockTtlMs / 3);
    this.renewer.unref();
  }

  /** Stops after the step under way, and frees the batches' locks so another process takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    // A download waiting for its next lines or a create uploading must not hold the worker's stop:
    // what they leave is resumed by the next process, as after a SIGKILL.
    this.aborter.abort();
    clearInterval(this.timer);
    clearInterval(this.renewer);
    await this.ticking;
    for (const lock of this.locks.values()) await lock.release().catch(() => undefined);
    this.locks.clear();
    this.ceiling.close();
  }

  /** One round: every batch with hosted work whose lock this process holds or takes. Also for tests. */
  async tick(): Promise<void> {
    const { redis, keys } = this.runtime;
    await this.emptyTrash();
    const ids = await redis.smembers(keys.hostedBatches());
    for (const id of ids) {
      if (this.stopped) return;
      const lock = this.lockOf(id);
      if (!(await lock.hold(this.lockTtlMs))) continue;
      try {
        await this.advance(id, lock);
      } catch (err) {
        this.runtime.logger.warn('hosted runner: batch step failed; trying again next round', {
          batch_id: id,
          error: (err as Error).message,
        });
      }
    }
  }

  /** Leaves a batch with no hosted work left: out of the set, its lock freed. */
  private async forget(batchId: string): Promise<void> {
    await this.runtime.redis.srem(this.runtime.keys.hostedBatches(), batchId);
    await this.locks.get(batchId)?.release();
    this.locks.delete(batchId);
    for (const key of this.polls.keys()) if (key.startsWith(`${batchId}:`)) this.polls.delete(key);
  }

  private lockOf(batchId: string): ExpiringLock {
    let lock = this.locks.get(batchId);
    if (!lock) {
      lock = new ExpiringLock(this.runtime.redis, this.runtime.keys.hostedLock(batchId));
      this.locks.set(batchId, lock);
    }
    return lock;
  }

  private async renewLocks(): Promise<void> {
    for (const [id, lock] of this.locks) {
      if (!(await lock.extend(this.lockTtlMs).catch(() => false))) this.locks.delete(id);
    }
  }

  /** Moves one batch's chunks along, then packs and creates the next one if it may. */
  private async advance(batchId: string, lock: ExpiringLock): Promise<void> {
    const { store } = this.runtime;
    const record = await store.get(batchId);
    if (!record) {
      // Deleted: its hosted batches are in the trash (the delete put them there).
      await this.forget(batchId);
      return;
    }
    if (record.via === 'auto' && record.route === 'hosted' && !record.canceled_at) {
      await this.maybeSwitchToLive(record);
    }
    const canceled = record.canceled_at !== null;
    const goLive = record.route === 'live';
    for (const chunk of await this.chunks.all(batchId)) {
      if (this.stopped || !(await lock.extend(this.lockTtlMs))) return;
      await this.step(record, chunk, { canceled, goLive });
    }
    if (this.stopped) return;
    if (!canceled && !goLive) await this.packAndCreate(record, lock);
    // Done with it: on the live route with nothing open at the API (the dispatcher has the rest).
    const open = (await this.chunks.all(batchId)).some((c) => c.state !== 'done');
    if (!open && (goLive || canceled || record.ended_at)) await this.forget(batchId);
  }

  /** One chunk's next step, by its state. */
  private async step(
    record: BatchRecord,
    chunk: ChunkMeta,
    flags: { canceled: boolean; goLive: boolean },
  ): Promise<void> {
    switch (chunk.state) {
      case 'packing':
      case 'packed':
        // Not sent yet: a canceled batch ends its requests here; one gone live sends them live.
        if (flags.canceled) return this.endUnsent(record, chunk, 'canceled');
        if (flags.goLive) return this.endUnsent(record, chunk, 'live');
        if (chunk.state === 'packing') await this.finishPacking(record.id, chunk);
        await this.create(record, chunk.n);
        return;
      case 'creating':
        // A create that did not record its outcome: the process died, or the call timed out.
        return this.adopt(record, chunk);
      case 'created':
        if ((flags.canceled || flags.goLive) && !chunk.cancel_sent) await this.cancel(record.id, chunk);
        return this.poll(record.id, chunk);
      case 'ended':
        return this.download(record, chunk);
      case 'held':
      case 'done':
        return;
    }
  }

  /**
   * Opens the batch's next chunk and fills it from its share, when that is worth a hosted batch:
   * its submit is complete (or the share alone fills a chunk) and no model's canary is still
   * pending (the canaries go live first; a chunk made before they end would leave their models'
   * requests for another). Not while the queue is paused (a breaker, `pause`), the batch is paused
   * on its own, or the API refused a create with 429 a moment ago.
   */
  private async packAndCreate(record: BatchRecord, lock: ExpiringLock): Promise<void> {
    const { redis, keys } = this.runtime;
    if (Date.now() < this.createAfter) return;
    const share = await this.holds.count(record.id, SHARE_REASON);
    if (share === 0) return;
    const pendingCanary = Object.values(record.canary).some((state) => state === 'pending');
    if ((record.submit_state !== 'submitted' || pendingCanary) && share < this.maxRequests) return;
    const [paused, ownPause] = await Promise.all([
      this.runtime.requests.isPaused(),
      redis.sismember(keys.pausedBatches(), record.id),
    ]);
    if (paused || ownPause === 1) return;
    for (;;) {
      if (this.stopped || !(await lock.extend(this.lockTtlMs))) return;
      const chunk = await this.chunks.open(record.id);
      if ((await this.finishPacking(record.id, chunk)) === 0) return;
      const created = await this.create(record, chunk.n);
      if (!created || (await this.holds.count(record.id, SHARE_REASON)) === 0) return;
    }
  }

  /** Packs pages into a packing chunk until it is full or the share is empty; then marks it packed. */
  private async finishPacking(batchId: string, chunk: ChunkMeta): Promise<number> {
    let count = chunk.count;
    for (;;) {
      const page = await this.chunks.packPage(batchId, chunk.n, {
        maxRequests: this.maxRequests,
        maxBytes: this.maxBytes,
      });
      if (!page) break;
      count = page.count;
      if (page.full || page.moved === 0) break;
    }
    // Empty (the share was taken meanwhile, or the batch ended): nothing to create.
    const meta = await this.chunks.get(batchId, chunk.n);
    if (meta?.state === 'packing') {
      await this.chunks.update(batchId, { ...meta, state: meta.count > 0 ? 'packed' : 'done' }, 'packing');
    }
    return count;
  }

  /**
   * Creates chunk `n` at the API: records the intent (when, and its token) first, then calls, then
   * records the hosted id. An answer of the API that refuses it (429: too many requests waiting
   * there; 5xx) created nothing: the chunk goes back to `packed` and waits (`retry-after`). No
   * answer at all (a timeout, a cut connection) leaves the intent for {@link adopt}. Returns
   * whether it was created.
   */
  private async create(record: BatchRecord, n: number): Promise<boolean> {
    const { redis, keys } = this.runtime;
    if (Date.now() < this.createAfter) return false;
    if (await this.runtime.requests.isPaused()) return false;
    if ((await redis.sismember(keys.pausedBatches(), record.id)) === 1) return false;
    let meta = await this.chunks.get(record.id, n);
    if (!meta || meta.state !== 'packed') return false;
    // One pass over the chunk keeping a few numbers a request (not its data: a chunk may be 256 MB).
    const prices = this.ceiling.pricesOf(record);
    const open = await redis.hgetall(keys.modelBreakers());
    const items: Array<{ jobId: string; worst: number; bytes: number }> = [];
    let model: string | null = null;
    let stopped = 0;
    const seen = new Set<string>();
    for await (const page of this.chunks.entries(record.id, n)) {
      for (const [jobId, json] of page) {
        if (seen.has(jobId)) continue;
        seen.add(jobId);
        const data = JSON.parse(json) as RequestJobData;
        // A model whose breaker is open is not sent: its requests end as the live path ends them.
        const breaker = open[data.params.model];
        if (breaker !== undefined) {
          await this.stopByBreaker(record.id, n, jobId, data, JSON.parse(breaker) as ModelBreakerState);
          stopped++;
          continue;
        }
        model ??= data.params.model;
        items.push({ jobId, worst: prices ? this.ceiling.worstOf(data, prices) : 0, bytes: json.length + 1 });
      }
    }
    if (stopped > 0) {
      const next: ChunkMeta = { ...meta, count: items.length, state: items.length === 0 ? 'done' : 'packed' };
      if (!(await this.chunks.update(record.id, next, 'packed')) || items.length === 0) return false;
      meta = next;
    }
    // Within what is left of a cost ceiling: the chunk keeps what fits, the rest waits for the next.
    const admission = await this.ceiling.admit(record, items);
    if (admission.kind === 'wait') return false;
    if (admission.keep < items.length) {
      const excess = items.splice(admission.keep).map((item) => item.jobId);
      const data = await this.chunks.dataOf(record.id, n, excess);
      await this.chunks.rehold(
        record.id,
        n,
        excess.flatMap((jobId, i) => (data[i] ? [[jobId, data[i]] as const] : [])),
      );
      const cut: ChunkMeta = {
        ...meta,
        count: items.length,
        bytes: items.reduce((sum, item) => sum + item.bytes, 0),
      };
      if (!(await this.chunks.update(record.id, cut, 'packed'))) {
        await this.ceiling.release(record.id, admission.reservation ?? undefined);
        return false;
      }
      meta = cut;
    }
    const intent: ChunkMeta = {
      ...meta,
      state: 'creating',
      intent_at: Date.now(),
      intent_token: randomUUID(),
      marker: markerId(),
      ...(admission.reservation ? { reservation: admission.reservation } : {}),
    };
    if (!(await this.chunks.update(record.id, intent, 'packed'))) {
      await this.ceiling.release(record.id, admission.reservation ?? undefined);
      return false;
    }
    let hosted: HostedBatch;
    try {
      hosted = await this.options.api.create(
        this.body(record.id, n, intent.marker!, model!),
        this.aborter.signal,
      );
    } catch (err) {
      // Never sent (the connection was refused, the host did not resolve): nothing was created, as
      // when the API refuses it. Otherwise no answer means it may have been: adoption looks for it.
      const failure = err instanceof HostedApiError ? err.failure : null;
      if (!failure || (failure.status === null && failure.neverSent !== true)) {
        // No answer: it may have been created. Adoption looks for it (now, and after a crash).
        this.runtime.logger.warn('hosted batch create: no answer; looking for it among the hosted batches', {
          batch_id: record.id,
          chunk: n,
          error: (err as Error).message,
        });
        await this.adopt(record, intent);
        return false;
      }
      await this.ceiling.release(record.id, admission.reservation ?? undefined);
      // Refused: nothing was created. What it means comes from the one error table.
      const { rule } = ruleFor(failure);
      if (rule.disposition === 'terminal') return this.refused(record, intent, items, failure, rule);
      const waitMs = retryAfterMs(failure.headers) ?? this.pollMinMs;
      this.createAfter = Date.now() + waitMs;
      await this.chunks.update(record.id, { ...meta, state: 'packed' }, 'creating');
      this.runtime.logger.warn('hosted batch create refused; trying again later', {
        batch_id: record.id,
        chunk: n,
        status: failure.status,
        type: failure.type,
        message: failure.message,
        retry_in_ms: waitMs,
      });
      return false;
    }
    await this.recordCreated(record.id, { ...intent, hosted_id: hosted.id }, hosted, false);
    this.runtime.logger.info('hosted batch created', {
      batch_id: record.id,
      chunk: n,
      hosted_id: hosted.id,
      requests: meta.count,
    });
    return true;
  }

  /**
   * A create the API refused for good (no retry would pass). A key-wide cause (credits, key,
   * spend limit) trips the key breaker: the chunk waits, packed, for its fix. Otherwise the
   * hosted batch itself was refused (over a limit the API enforces below ours, or a request the
   * validator let through): it is halved, the other half held again for a later chunk, until a
   * chunk of one request is refused, which is then dead-lettered with the API's error. Returns
   * false (nothing created).
   */
  private async refused(
    record: BatchRecord,
    intent: ChunkMeta,
    items: ReadonlyArray<{ jobId: string; bytes: number }>,
    failure: ApiFailure,
    rule: ErrorRule,
  ): Promise<false> {
    const packed: ChunkMeta = { ...intent, state: 'packed' };
    delete packed.intent_at;
    delete packed.intent_token;
    delete packed.marker;
    delete packed.reservation;
    const lastError = {
      status: failure.status,
      type: failure.type ?? 'invalid_request_error',
      message: failure.message,
      request_id: failure.requestId,
    };
    this.runtime.logger.warn('hosted batch create refused for good', {
      batch_id: record.id,
      chunk: intent.n,
      requests: items.length,
      status: failure.status,
      type: failure.type,
      message: failure.message,
    });
    if (rule.scope === 'key') {
      await this.chunks.update(record.id, packed, 'creating');
      await tripKeyBreaker(
        this.runtime,
        { ...lastError, errorCode: failure.errorCode },
        rule,
        this.options.alert,
        this.options.accountId,
      );
      return false;
    }
    if (items.length > 1) {
      const half = Math.ceil(items.length / 2);
      const excess = items.slice(half).map((item) => item.jobId);
      const data = await this.chunks.dataOf(record.id, intent.n, excess);
      await this.chunks.rehold(
        record.id,
        intent.n,
        excess.flatMap((jobId, i) => (data[i] ? [[jobId, data[i]] as const] : [])),
      );
      const kept = items.slice(0, half);
      await this.chunks.update(
        record.id,
        { ...packed, count: kept.length, bytes: kept.reduce((sum, item) => sum + item.bytes, 0) },
        'creating',
      );
      return false;
    }
    const [json] = await this.chunks.dataOf(record.id, intent.n, [items[0]!.jobId]);
    if (json) {
      const data = JSON.parse(json) as RequestJobData;
      await deadLetter(
        { runtime: this.runtime },
        {
          ...deadLetterEntry(data, 'terminal', lastError, {
            calls: (data.calls ?? 0) + 1,
            firstAt: data.first_at ?? null,
          }),
          path: 'hosted',
        },
      );
      await this.chunks.drop(record.id, intent.n, [items[0]!.jobId]);
    }
    await this.chunks.update(record.id, { ...packed, state: 'done' }, 'creating');
    return false;
  }

  /**
   * Dead-letters a chunk's request whose model's breaker is open, as the live path's gate does
   * (reason `model_breaker`, condition `model`, the breaker's fix), and takes it out of the chunk.
   */
  private async stopByBreaker(
    batchId: string,
    n: number,
    jobId: string,
    data: RequestJobData,
    breaker: ModelBreakerState,
  ): Promise<void> {
    await deadLetter(
      { runtime: this.runtime },
      deadLetterEntry(
        data,
        'model_breaker',
        { status: null, type: breaker.type, message: '', request_id: null },
        { calls: data.calls ?? 0, firstAt: data.first_at ?? null },
        modelBreakerMessage(breaker),
        'model',
      ),
    );
    await this.chunks.drop(batchId, n, [jobId]);
  }

  /**
   * The chunk's requests as the create body takes them, read from Redis a page at a time while the
   * body is sent, then the marker. Each request once (a hash scan may repeat one).
   */
  private async *body(
    batchId: string,
    n: number,
    marker: string,
    model: string,
  ): AsyncGenerator<HostedRequest> {
    const seen = new Set<string>();
    for await (const page of this.chunks.entries(batchId, n)) {
      for (const [jobId, json] of page) {
        if (seen.has(jobId)) continue;
        seen.add(jobId);
        const data = JSON.parse(json) as RequestJobData;
        yield { custom_id: data.custom_id, params: data.params };
      }
    }
    yield markerRequest(marker, model);
  }

  /** Records a chunk's hosted batch (created or adopted): claims the id first, then the chunk's state. */
  private async recordCreated(
    batchId: string,
    chunk: ChunkMeta,
    hosted: HostedBatch,
    adopted: boolean,
  ): Promise<void> {
    await this.runtime.redis.hset(this.runtime.keys.hostedIds(), hosted.id, `${batchId}:${chunk.n}`);
    const next: ChunkMeta = {
      ...chunk,
      state: 'created',
      hosted_id: hosted.id,
      processing_status: hosted.processing_status,
      request_counts: countsWithoutMarker(hosted.request_counts, chunk.marker ? null : 'none'),
      hosted_counts: hosted.request_counts,
      created_at: hosted.created_at,
      ...(adopted ? { adopted: true } : {}),
    };
    delete next.held;
    if (!(await this.chunks.update(batchId, next, chunk.state))) {
      // The chunk moved on while the create was under way (this process stalled past its lock):
      // see which way, so the hosted batch just created is never left unknown.
      const now = await this.chunks.get(batchId, chunk.n);
      const ours = !adopted && now?.intent_token === chunk.intent_token;
      if (ours && now?.state === 'held' && !now.hosted_id) {
        // Held for an operator because nothing matched yet: this answer settles it.
        await this.chunks.update(batchId, { ...next, state: 'created' }, 'held');
      } else if (!adopted && now?.hosted_id !== hosted.id) {
        // Deleted meanwhile, or another process adopted another batch for it: this one is a
        // copy nobody owns. The trash cancels and deletes it.
        await this.runtime.redis.hset(
          this.runtime.keys.hostedTrash(),
          hosted.id,
          JSON.stringify({ batch: batchId, since: new Date().toISOString(), orphan: true }),
        );
        this.runtime.logger.warn(
          'hosted batch created for a chunk that moved on meanwhile: canceled and deleted',
          {
            batch_id: batchId,
            chunk: chunk.n,
            hosted_id: hosted.id,
          },
        );
        return;
      }
    }
    this.polls.set(`${batchId}:${chunk.n}`, { at: Date.now() + this.pollMinMs, waitMs: this.pollMinMs });
  }

  /**
   * A chunk whose create may or may not have happened. Adopts the one unclaimed hosted batch of the
   * workspace that matches it (its request count, created within the intent's window); with none
   * or several, holds the chunk for an operator: creating it again could pay for it twice.
   */
  private async adopt(record: BatchRecord, chunk: ChunkMeta): Promise<void> {
    const { redis, keys } = this.runtime;
    const from = (chunk.intent_at ?? 0) - SKEW_MS;
    const to = (chunk.intent_at ?? 0) + (this.options.createTimeoutMs ?? 600_000) + SKEW_MS;
    const candidates: HostedBatch[] = [];
    for await (const hosted of this.options.api.list(this.aborter.signal)) {
      const at = Date.parse(hosted.created_at);
      if (at < from) break;
      if (at > to) continue;
      const counts = hosted.request_counts;
      const total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired;
      if (total !== chunk.count + (chunk.marker ? 1 : 0)) continue;
      // Claimed by another chunk: not this one's. Claimed by this very chunk: a process died between
      // claiming it and recording the chunk created (recordCreated claims first).
      const owner = await redis.hget(keys.hostedIds(), hosted.id);
      if (owner !== null && owner !== `${record.id}:${chunk.n}`) continue;
      candidates.push(hosted);
    }
    if (candidates.length === 1) {
      await this.recordCreated(record.id, chunk, candidates[0]!, true);
      this.runtime.logger.warn('hosted batch adopted after an interrupted create', {
        batch_id: record.id,
        chunk: chunk.n,
        hosted_id: candidates[0]!.id,
      });
      return;
    }
    const reason =
      candidates.length === 0
        ? `its create was interrupted and no hosted batch of ${chunk.count} requests created around ${new Date(chunk.intent_at ?? 0).toISOString()} is unclaimed: it was probably not created`
        : `its create was interrupted and ${candidates.length} unclaimed hosted batches of ${chunk.count} requests match it`;
    const held: ChunkMeta = {
      ...chunk,
      state: 'held',
      held: {
        reason,
        candidates: candidates.map((c) => c.id),
        fix: settleCommand(record.id, chunk.n),
        since: new Date().toISOString(),
      },
    };
    if (await this.chunks.update(record.id, held, 'creating')) {
      this.runtime.logger.error('hosted chunk held for an operator: creating it again might pay twice', {
        batch_id: record.id,
        chunk: chunk.n,
        candidates: held.held!.candidates,
        fix: held.held!.fix,
      });
    }
  }

  /** Retrieves a created chunk when its poll is due; marks it ended when the API says so. */
  private async poll(batchId: string, chunk: ChunkMeta): Promise<void> {
    const key = `${batchId}:${chunk.n}`;
    const due = this.polls.get(key);
    if (due && Date.now() < due.at) return;
    const waitMs = due?.waitMs ?? this.pollMinMs;
    let hosted: HostedBatch;
    try {
      hosted = await this.options.api.retrieve(chunk.hosted_id!, this.aborter.signal);
    } catch (err) {
      const failure = err instanceof HostedApiError ? err.failure : null;
      if (failure?.status === 404) {
        await this.hold(batchId, chunk, 'the API no longer knows its hosted batch (deleted elsewhere?)');
        return;
      }
      const retryAfter = failure ? retryAfterMs(failure.headers) : null;
      this.polls.set(key, {
        at: Date.now() + Math.max(retryAfter ?? 0, waitMs),
        waitMs: this.nextWait(waitMs),
      });
      this.runtime.logger.warn('hosted batch poll failed; polling again later', {
        batch_id: batchId,
        hosted_id: chunk.hosted_id,
        error: (err as Error).message,
      });
      return;
    }
    const next: ChunkMeta = {
      ...chunk,
      processing_status: hosted.processing_status,
      request_counts: countsWithoutMarker(hosted.request_counts, chunk.marker ? null : 'none'),
      hosted_counts: hosted.request_counts,
      ended_at: hosted.ended_at,
    };
    if (hosted.processing_status === 'ended') {
      next.state = 'ended';
      this.polls.delete(key);
    } else {
      this.polls.set(key, { at: Date.now() + waitMs, waitMs: this.nextWait(waitMs) });
    }
    await this.chunks.update(batchId, next, 'created');
    if (next.state === 'ended') await this.download((await this.runtime.store.get(batchId))!, next);
  }

  private nextWait(waitMs: number): number {
    return Math.min(this.pollMaxMs, Math.round(waitMs * 1.5));
  }

  private async cancel(batchId: string, chunk: ChunkMeta): Promise<void> {
    try {
      const hosted = await this.options.api.cancel(chunk.hosted_id!, this.aborter.signal);
      chunk.cancel_sent = true;
      chunk.processing_status = hosted.processing_status;
      await this.chunks.update(batchId, chunk, 'created');
      // Poll soon: what comes back canceled is wanted (live) or ends (a canceled batch).
      this.polls.set(`${batchId}:${chunk.n}`, { at: Date.now() + this.pollMinMs, waitMs: this.pollMinMs });
      this.runtime.logger.info('hosted batch cancel sent', { batch_id: batchId, hosted_id: chunk.hosted_id });
    } catch (err) {
      // An ended batch cannot be canceled (409 or 400): the poll finds it ended.
      this.runtime.logger.warn('hosted batch cancel failed; the poll goes on', {
        batch_id: batchId,
        hosted_id: chunk.hosted_id,
        error: (err as Error).message,
      });
    }
  }

  private async hold(batchId: string, chunk: ChunkMeta, reason: string): Promise<void> {
    await this.chunks.update(
      batchId,
      {
        ...chunk,
        state: 'held',
        held: {
          reason,
          candidates: [],
          fix: settleCommand(batchId, chunk.n),
          since: new Date().toISOString(),
        },
      },
      chunk.state,
    );
    this.runtime.logger.error('hosted chunk held for an operator', {
      batch_id: batchId,
      chunk: chunk.n,
      reason,
    });
  }

  /**
   * Streams an ended chunk's results into the batch's results, a page of lines at a time. Each
   * line is applied only while its request is still in the chunk, and leaves the chunk after its
   * result is written (or it is held again), so a download killed midway is resumed from the start
   * without writing a line twice. An adopted chunk's custom_ids are checked against it first.
   * Requests of the chunk no line came for are held again, to be sent again.
   */
  private async download(record: BatchRecord, chunk: ChunkMeta): Promise<void> {
    const batchId = record.id;
    if (chunk.adopted && !(await this.matchesChunk(batchId, chunk))) {
      await this.hold(
        batchId,
        chunk,
        `the adopted hosted batch ${chunk.hosted_id} lacks this chunk's marker request (or holds custom_ids that are not the chunk's): it is another client's`,
      );
      return;
    }
    let page: HostedResultLine[] = [];
    let written = 0;
    const cost = { nano: 0 };
    let markerType: HostedResultLine['result']['type'] | null = null;
    for await (const line of this.options.api.results(chunk.hosted_id!, this.aborter.signal)) {
      if (line.custom_id === chunk.marker) {
        markerType = line.result.type;
        continue;
      }
      page.push(line);
      if (page.length >= CHUNK_PAGE) {
        written += await this.applyPage(record, chunk.n, page, cost);
        page = [];
        if (this.stopped) return;
      }
    }
    written += await this.applyPage(record, chunk.n, page, cost);
    // A request with no line in the results (the API lost it?) goes out again.
    const left: HeldEntry[] = [];
    for await (const entries of this.chunks.entries(batchId, chunk.n)) left.push(...entries);
    const reheld = await this.chunks.rehold(batchId, chunk.n, left);
    if (reheld > 0) {
      this.runtime.logger.warn('hosted batch results lacked some requests; they are sent again', {
        batch_id: batchId,
        hosted_id: chunk.hosted_id,
        requests: reheld,
      });
    }
    // Counted over every download of the chunk (one killed midway included): the requests held
    // again to be sent again, whatever the reason; the rest have their line.
    const heldAgain = await this.chunks.reheldCount(batchId, chunk.n);
    await this.chunks.update(
      batchId,
      {
        ...chunk,
        state: 'done',
        written: chunk.count - heldAgain,
        reheld: heldAgain,
        ...(chunk.hosted_counts && chunk.marker
          ? { request_counts: countsWithoutMarker(chunk.hosted_counts, markerType) }
          : {}),
      },
      'ended',
    );
    // What its lines cost (a download resumed by another process knows only its own part: the
    // reservation it did not hold has then expired and been charged at its worst case already).
    if (chunk.reservation) await this.ceiling.settle(batchId, chunk.reservation, cost.nano);
    this.runtime.logger.info('hosted batch results downloaded', {
      batch_id: batchId,
      hosted_id: chunk.hosted_id,
      lines: written,
    });
  }

  /** Whether every custom_id of an adopted hosted batch's results is one of the chunk's (or has its line). */
  private async matchesChunk(batchId: string, chunk: ChunkMeta): Promise<boolean> {
    let page: string[] = [];
    let marked = chunk.marker === undefined;
    const check = async (): Promise<boolean> => {
      const jobIds = await this.jobIdsOf(batchId, page);
      const [inChunk, lines] = await Promise.all([
        this.chunks.dataOf(batchId, chunk.n, jobIds),
        this.runtime.redis.hmget(this.runtime.keys.results(batchId), ...page),
      ]);
      return page.every((_, i) => inChunk[i] !== null || lines[i] !== null);
    };
    for await (const line of this.options.api.results(chunk.hosted_id!, this.aborter.signal)) {
      // The chunk's marker proves the hosted batch is this chunk's: another runner's batch of the
      // same file (same custom_ids and count) has another marker.
      if (line.custom_id === chunk.marker) {
        marked = true;
        continue;
      }
      page.push(line.custom_id);
      if (page.length >= CHUNK_PAGE) {
        if (!(await check())) return false;
        page = [];
      }
    }
    return marked && (page.length === 0 || (await check()));
  }

  /** Job ids of these custom_ids at their current generation, in the batch's incarnation. */
  private async jobIdsOf(batchId: string, customIds: readonly string[]): Promise<string[]> {
    if (customIds.length === 0) return [];
    const { redis, keys } = this.runtime;
    const [gens, inc] = await Promise.all([
      redis.hmget(keys.generations(batchId), ...customIds),
      redis.hget(keys.batch(batchId), 'incarnation'),
    ]);
    return customIds.map((id, i) => requestJobId(batchId, id, Number(gens[i] ?? 0), Number(inc ?? 0)));
  }

  /** Applies one page of result lines; returns the lines written. */
  private async applyPage(
    record: BatchRecord,
    n: number,
    lines: readonly HostedResultLine[],
    cost: { nano: number },
  ): Promise<number> {
    if (lines.length === 0) return 0;
    const batchId = record.id;
    const jobIds = await this.jobIdsOf(
      batchId,
      lines.map((l) => l.custom_id),
    );
    const data = await this.chunks.dataOf(batchId, n, jobIds);
    const context = {
      retry: this.options.retry,
      now: Date.now(),
      batchCanceled: record.canceled_at !== null,
      deadline: record.deadline,
    };
    const resend: HeldEntry[] = [];
    const done: string[] = [];
    let keyFailure: Extract<LineOutcome, { kind: 'key-failure' }> | undefined;
    let written = 0;
    await Promise.all(
      lines.map(async (line, i) => {
        const json = data[i];
        // Not in the chunk: its line was applied by a download that died after it, or it is not ours.
        if (json === null || json === undefined) return;
        const request = JSON.parse(json) as RequestJobData;
        const outcome = decideLine(line, request, context);
        if (outcome.kind === 'key-failure') keyFailure ??= outcome;
        if (outcome.kind === 'succeeded') cost.nano += this.ceiling.actualOf(record, request, outcome.usage);
        const result = await this.applyLine(request, outcome);
        if (result === 'resend') resend.push([jobIds[i]!, JSON.stringify(outcomeData(outcome, request))]);
        else {
          done.push(jobIds[i]!);
          written++;
        }
      }),
    );
    await this.chunks.drop(batchId, n, done);
    await this.chunks.rehold(batchId, n, resend);
    // A key-wide failure (credits, key, spend limit): the breaker trips once, after the requests
    // are held again, and pauses the queue: no chunk is created until its fix resumes it.
    if (keyFailure) {
      await tripKeyBreaker(
        this.runtime,
        { ...keyFailure.lastError, errorCode: keyFailure.errorCode },
        keyFailure.rule,
        this.options.alert,
        this.options.accountId,
      );
    }
    return written;
  }

  /**
   * The one place a hosted line's outcome changes state; each write idempotent, so applying a line
   * again (a download resumed) changes nothing: results lines are written once (HSETNX), a
   * dead-letter entry is added under its job id.
   */
  private async applyLine(data: RequestJobData, outcome: LineOutcome): Promise<'written' | 'resend'> {
    const { runtime } = this;
    const inc = data.inc ?? 0;
    switch (outcome.kind) {
      case 'succeeded':
        await runtime.store.finalize(data.batch_id, data.custom_id, data.gen, {
          kind: 'succeeded',
          line: succeededLine(data.custom_id, outcome.messageJson),
          usage: outcome.usage,
          truncated: outcome.stopReason === 'max_tokens',
          refused: outcome.stopReason === 'refusal',
          model: data.params.model,
          accountId: this.options.accountId,
          incarnation: inc,
          path: 'hosted',
        });
        return 'written';
      case 'canceled':
      case 'expired':
        await this.endUnanswered(data, outcome.kind);
        return 'written';
      case 'dead-letter':
        await deadLetter(
          { runtime },
          {
            ...deadLetterEntry(
              data,
              outcome.reason,
              outcome.lastError,
              { calls: (data.calls ?? 0) + 1, firstAt: data.first_at ?? null },
              outcome.message,
            ),
            path: 'hosted',
          },
        );
        return 'written';
      case 'model-failure':
        await deadLetter(
          { runtime },
          {
            ...deadLetterEntry(
              data,
              'terminal',
              outcome.lastError,
              { calls: (data.calls ?? 0) + 1, firstAt: data.first_at ?? null },
              undefined,
              outcome.rule.condition,
            ),
            path: 'hosted',
          },
        );
        await countModelFailure(
          runtime,
          data.params.model,
          outcome.lastError,
          outcome.rule,
          this.options.modelBreakerThreshold,
          this.options.alert,
        );
        return 'written';
      case 'key-failure':
        // The breaker is tripped once for the page, after it (see applyPage).
        return 'resend';
      case 'resend':
        return 'resend';
    }
  }

  /** Writes the line of a request the API did not answer: canceled, or expired. */
  private async endUnanswered(data: RequestJobData, kind: 'canceled' | 'expired'): Promise<void> {
    await this.runtime.store.finalize(data.batch_id, data.custom_id, data.gen, {
      kind,
      line: kind === 'canceled' ? canceledLine(data.custom_id) : expiredLine(data.custom_id),
      incarnation: data.inc ?? 0,
    });
  }

  /**
   * Requests of a chunk never sent (packing or packed): ended canceled (a canceled batch), or held
   * again for the share (an `auto` batch gone live: the dispatcher sends them).
   */
  private async endUnsent(record: BatchRecord, chunk: ChunkMeta, how: 'canceled' | 'live'): Promise<void> {
    const batchId = record.id;
    for await (const page of this.chunks.entries(batchId, chunk.n)) {
      if (how === 'live') {
        await this.chunks.rehold(batchId, chunk.n, page);
        continue;
      }
      const ids: string[] = [];
      await Promise.all(
        page.map(async ([jobId, json]) => {
          await this.endUnanswered(JSON.parse(json) as RequestJobData, 'canceled');
          ids.push(jobId);
        }),
      );
      await this.chunks.drop(batchId, chunk.n, ids);
    }
    await this.chunks.update(batchId, { ...chunk, state: 'done' }, chunk.state);
  }

  /**
   * `auto`: once the deadline no longer leaves room to finish everything open on the live path
   * (after a cancel comes back), the batch goes live: at the top priority of the fair share, its
   * share dispatched by the dispatcher, and its hosted batches canceled (what comes back canceled
   * is sent live; what they finished meanwhile is kept).
   */
  private async maybeSwitchToLive(record: BatchRecord): Promise<void> {
    const remaining = Math.max(0, record.counts.processing);
    // The runner's own delays come on top of the plan: a round to see the deadline near, a poll to
    // see the canceled batch end, and a round to download it.
    const ownDelays = 2 * this.intervalMs + this.pollMinMs;
    if (Date.now() < switchAt(record.deadline, remaining, this.options.plan) - ownDelays) return;
    const { redis, keys } = this.runtime;
    await redis
      .multi()
      .hset(
        keys.batch(record.id),
        'route',
        'live',
        'priority',
        String(MAX_PRIORITY),
        'switched_at',
        new Date().toISOString(),
      )
      .sadd(keys.shareBatches(), record.id)
      .exec();
    record.route = 'live';
    this.runtime.logger.warn('auto: the deadline no longer leaves room for the hosted path; finishing live', {
      batch_id: record.id,
      deadline: new Date(record.deadline ?? 0).toISOString(),
      remaining,
    });
  }

  /**
   * Hosted batches of deleted batches: canceled while they run, deleted once ended (the API
   * deletes only ended batches), then forgotten.
   */
  private async emptyTrash(): Promise<void> {
    const { redis, keys } = this.runtime;
    const trash = await redis.hkeys(keys.hostedTrash());
    for (const id of trash) {
      // Looked at every poll interval, like a chunk (every process may: what one does, the others find done).
      const due = this.trashPolls.get(id) ?? 0;
      if (Date.now() < due) continue;
      this.trashPolls.set(id, Date.now() + this.pollMinMs);
      try {
        const hosted = await this.options.api.retrieve(id, this.aborter.signal);
        if (hosted.processing_status === 'in_progress') {
          await this.options.api.cancel(id, this.aborter.signal);
          continue;
        }
        if (hosted.processing_status !== 'ended') continue;
        await this.options.api.delete(id, this.aborter.signal);
      } catch (err) {
        if (!(err instanceof HostedApiError && err.failure.status === 404)) {
          this.runtime.logger.warn('hosted batch of a deleted batch: delete failed; trying again', {
            hosted_id: id,
            error: (err as Error).message,
          });
          continue;
        }
      }
      await redis.multi().hdel(keys.hostedTrash(), id).hdel(keys.hostedIds(), id).exec();
      this.trashPolls.delete(id);
      this.runtime.logger.info('hosted batch of a deleted batch deleted', { hosted_id: id });
    }
  }
}

/** The job data a resend holds again: the outcome's (its attempt counted) or the request's as it was. */
function outcomeData(outcome: LineOutcome, data: RequestJobData): RequestJobData {
  return outcome.kind === 'resend' || outcome.kind === 'key-failure' ? outcome.data : data;
}

/** Room the marker request takes in a hosted batch's body (bytes, generously: its JSON is ~130). */
const MARKER_BYTES = 512;

/**
 * The custom_id of a chunk's marker: one request of its own in every hosted batch, so that after a
 * crash the runner can tell its hosted batch from another client's batch of the same file (the same
 * custom_ids, the same count, created at the same time). Random, never a user's custom_id in
 * practice (16 hex digits), and within the API's pattern `^[a-zA-Z0-9_-]{1,64}$`.
 */
function markerId(): string {
  return `cb-chunk-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
}

/** The marker request: the smallest the API takes (one output token), on a model of the chunk. */
function markerRequest(
  customId: string,
  model: string,
): { custom_id: string; params: RequestJobData['params'] } {
  return {
    custom_id: customId,
    params: { model, max_tokens: 1, messages: [{ role: 'user', content: '.' }] },
  };
}
