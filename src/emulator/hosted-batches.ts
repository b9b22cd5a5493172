/**
 * The hosted Message Batches the emulator holds, and their timeline.
 *
 * Time model: a batch starts `startDelayMs` after it was created and processes its requests one after
 * another, in input order, `processingMs` each, so request i (from 0) finishes at
 * `created + startDelayMs + (i + 1) * processingMs`. Batches process side by side, each at that pace.
 * Nothing runs on a timer: every API call and every `stats`/`log` read first brings each unfinished
 * batch up to the clock (`advance`), processing in order the requests whose time has come. So the
 * state is exact whenever it is observed, and an injected (manual) clock drives it as well as
 * `Date.now` does.
 *
 * A batch ends when its last request is processed; at `expires_at` (created + expiryMs), when what is
 * left ends `expired`; or after a cancel, once the request in progress at that moment has finished
 * (the API "may complete any in-progress, non-interruptible requests before finalizing
 * cancellation", SDK 1.14 resources/messages/batches.d.ts, `cancel`), when the rest end `canceled`.
 *
 * `request_counts` follow the SDK's documented contract (batches.d.ts, MessageBatchRequestCounts):
 * every request counts as `processing` until the whole batch has ended; then succeeded, errored,
 * canceled and expired hold the final tallies. The sum always equals the batch's request count.
 */
import type { ResolvedOptions } from './options.js';

/** One request as created: its custom_id and its params (dropped once processed, to free memory). */
export interface HostedRequest {
  customId: string;
  params: unknown;
}

type ResultType = 'succeeded' | 'errored' | 'canceled' | 'expired';

export interface HostedBatch {
  readonly id: string;
  /** Creation order, for listing newest first. */
  readonly seq: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** When processing of the first request begins. */
  readonly startAt: number;
  /** Per-request processing time, as configured when the batch was created. */
  readonly processingMs: number;
  /** The creating key: per-key model permissions apply to its requests as to a live call. */
  readonly key: string;
  readonly requests: HostedRequest[];
  /** The `result` JSON of each request, by input index; null while it is not decided. */
  readonly results: Array<string | null>;
  /** Requests processed so far (a prefix of the input). */
  processed: number;
  status: 'in_progress' | 'canceling' | 'ended';
  cancelInitiatedAt: number | null;
  /** When a canceling batch ends: the request in progress at the cancel finishes first. */
  cancelEndsAt: number | null;
  endedAt: number | null;
  readonly counts: Record<ResultType, number>;
}

/** Decides one request's result (the live path's decisions, hosted-process.ts), as `result` JSON. */
export type ProcessRequest = (batch: HostedBatch, index: number, at: number) => { json: string; ok: boolean };

/** The settings the hosted endpoints run with (see the `batches*` options in options.ts). */
export interface HostedBatchSettings {
  startDelayMs: number;
  processingMs: number;
  maxRequests: number;
  maxBytes: number;
  queueLimit: number | null;
  expiryMs: number;
  /** Hold the answer to a create this long (ms); the batch exists meanwhile. */
  createReplyDelayMs: number;
  /** Pause a results download after this many lines (null: never) for `resultsPauseMs`. */
  resultsPauseAfterLines: number | null;
  resultsPauseMs: number;
}

export function hostedSettings(o: ResolvedOptions): HostedBatchSettings {
  return {
    startDelayMs: o.batchesStartDelayMs,
    processingMs: o.batchesProcessingMs,
    maxRequests: o.batchesMaxRequests,
    maxBytes: o.batchesMaxBytes,
    queueLimit: o.batchesQueueLimit,
    expiryMs: o.batchesExpiryMs,
    createReplyDelayMs: o.batchesCreateReplyDelayMs,
    resultsPauseAfterLines: o.batchesResultsPauseAfterLines,
    resultsPauseMs: o.batchesResultsPauseMs,
  };
}

/** Guards the division in `doneBy` against float error (a cancel's end lands exactly on a finish). */
const EPSILON = 1e-9;

export class HostedBatches {
  readonly #batches = new Map<string, HostedBatch>();
  /** Unended batches in creation order: the only ones `advance` visits. */
  readonly #active = new Set<HostedBatch>();
  /** Every id ever issued → its seq, so a deleted batch's id still works as a list cursor. */
  readonly #seqOf = new Map<string, number>();
  #nextSeq = 0;
  #created = 0;
  #deleted = 0;

  constructor(public settings: HostedBatchSettings) {}

  create(id: string, key: string, requests: HostedRequest[], now: number): HostedBatch {
    const s = this.settings;
    const batch: HostedBatch = {
      id,
      seq: ++this.#nextSeq,
      createdAt: now,
      expiresAt: now + s.expiryMs,
      startAt: now + s.startDelayMs,
      processingMs: s.processingMs,
      key,
      requests,
      results: new Array<string | null>(requests.length).fill(null),
      processed: 0,
      status: 'in_progress',
      cancelInitiatedAt: null,
      cancelEndsAt: null,
      endedAt: null,
      counts: { succeeded: 0, errored: 0, canceled: 0, expired: 0 },
    };
    this.#batches.set(id, batch);
    this.#seqOf.set(id, batch.seq);
    this.#active.add(batch);
    this.#created++;
    return batch;
  }

  get(id: string): HostedBatch | undefined {
    return this.#batches.get(id);
  }

  seqOf(id: string): number | undefined {
    return this.#seqOf.get(id);
  }

  /** Every batch not deleted, newest first. */
  newestFirst(): HostedBatch[] {
    return [...this.#batches.values()].reverse();
  }

  /** Requests not yet processed in batches still in progress: what the queue limit counts. */
  waitingRequests(): number {
    let n = 0;
    for (const b of this.#active) if (b.status === 'in_progress') n += b.requests.length - b.processed;
    return n;
  }

  /** Brings every unfinished batch up to `now`, processing due requests in order. */
  advance(now: number, process: ProcessRequest): void {
    for (const batch of this.#active) this.#advanceOne(batch, now, process);
  }

  #advanceOne(b: HostedBatch, now: number, process: ProcessRequest): void {
    const n = b.requests.length;
    let horizon = Math.min(now, b.expiresAt);
    if (b.cancelEndsAt !== null) horizon = Math.min(horizon, b.cancelEndsAt);
    const target = doneBy(b, horizon);
    for (let i = b.processed; i < target; i++) {
      const outcome = process(b, i, finishAt(b, i));
      b.results[i] = outcome.json;
      b.counts[outcome.ok ? 'succeeded' : 'errored']++;
      const request = b.requests[i];
      if (request !== undefined) request.params = null;
    }
    b.processed = Math.max(b.processed, target);
    if (b.processed === n) this.#end(b, n === 0 ? b.startAt : finishAt(b, n - 1), null);
    else if (b.cancelEndsAt !== null && now >= b.cancelEndsAt) this.#end(b, b.cancelEndsAt, 'canceled');
    else if (now >= b.expiresAt) this.#end(b, b.expiresAt, 'expired');
  }

  #end(b: HostedBatch, at: number, rest: 'canceled' | 'expired' | null): void {
    if (rest !== null) {
      const json = `{"type":"${rest}"}`;
      for (let i = b.processed; i < b.requests.length; i++) b.results[i] = json;
      b.counts[rest] += b.requests.length - b.processed;
    }
    b.status = 'ended';
    b.endedAt = at;
    this.#active.delete(b);
  }

  /**
   * Starts a cancel (call `advance` first). The request in progress, if any, finishes; the batch then
   * ends, the rest `canceled`. A batch already canceling or ended is left as it is.
   */
  cancel(b: HostedBatch, now: number): void {
    if (b.status !== 'in_progress') return;
    b.status = 'canceling';
    b.cancelInitiatedAt = now;
    const inProgress = b.processingMs > 0 && now >= b.startAt && b.processed < b.requests.length;
    b.cancelEndsAt = inProgress ? Math.min(finishAt(b, b.processed), b.expiresAt) : now;
  }

  /** Removes an ended batch. */
  delete(b: HostedBatch): void {
    this.#batches.delete(b.id);
    this.#deleted++;
  }

  stats(): HostedBatchStats {
    let inProgress = 0;
    let canceling = 0;
    for (const b of this.#active) {
      if (b.status === 'in_progress') inProgress++;
      else canceling++;
    }
    return {
      created: this.#created,
      deleted: this.#deleted,
      inProgress,
      canceling,
      ended: this.#batches.size - inProgress - canceling,
      waitingRequests: this.waitingRequests(),
    };
  }

  /** Zeroes the created and deleted counters; the batches themselves stay. */
  resetCounters(): void {
    this.#created = 0;
    this.#deleted = 0;
  }
}

export interface HostedBatchStats {
  /** Batches created (accepted by POST /v1/messages/batches) since start or the last reset. */
  created: number;
  /** Batches deleted since start or the last reset. */
  deleted: number;
  /** Batches held now, by processing status. */
  inProgress: number;
  canceling: number;
  ended: number;
  /** Requests not yet processed in batches in progress (what `batchesQueueLimit` counts). */
  waitingRequests: number;
}

function finishAt(b: HostedBatch, index: number): number {
  return b.startAt + (index + 1) * b.processingMs;
}

/** How many requests of `b` have finished by time `t`. */
function doneBy(b: HostedBatch, t: number): number {
  const n = b.requests.length;
  if (t < b.startAt) return 0;
  if (b.processingMs === 0) return n;
  return Math.min(n, Math.floor((t - b.startAt) / b.processingMs + EPSILON));
}
