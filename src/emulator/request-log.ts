/**
 * The request log: a bounded ring of one entry per answered API request (control requests are not
 * logged) and one per request a hosted Message Batch processed (`batchId` set), and the running
 * counters behind `stats`. No entry holds an API key or a header: only the path (without query
 * string), the model and figures derived from the prompt.
 *
 * A hosted request is not an HTTP request: it is counted under `hosted`, never in `requests`,
 * `byStatus`, `byPath` or `tokens`, so a test counting live calls is not misled by a hosted batch.
 */
import type { LimitName } from './rate-limiter.js';

/** `batch_queue`: a hosted batch refused by `batchesQueueLimit`. */
type RateLimitCause = LimitName | 'injected' | 'spend_cap' | 'concurrency' | 'batch_queue';

export interface RequestLogEntry {
  /** 1, 2, 3... in the order outcomes were decided; survives wrap-around, restarts at reset. */
  seq: number;
  /** When the request arrived, ms since the epoch (by the emulator's clock). */
  at: number;
  requestId: string;
  method: string;
  /** Without the query string. */
  path: string;
  model: string | null;
  /** HTTP status; 0 when the connection was reset or left hanging. */
  status: number;
  /** The API error type as sent, or `connection_reset` / `hang`; null on success. */
  errorType: string | null;
  /**
   * Whether the answer refused an empty balance, whatever its shape (a 400 invalid_request_error
   * by default, or a 402/403 billing_error): what a test counts as "refused for credits".
   */
  billing: boolean;
  /** Which limit a 429 came from; null otherwise. */
  rateLimit: RateLimitCause | null;
  retryAfterSeconds: number | null;
  /** Short sha256 of (model, tools, system, messages); equals `replyFingerprint(params)`. */
  promptHash: string | null;
  /** How many requests with this promptHash have been seen, this one included. */
  attempt: number | null;
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
  stopReason: string | null;
  /** Where an injected fault came from. */
  fault: 'marker' | 'script' | 'probability' | null;
  /**
   * The hosted Message Batch (`msgbatch_...`) this request was processed in; null for an HTTP
   * request. A hosted entry's `path` is `/v1/messages/batches`, its `at` when it was processed.
   */
  batchId: string | null;
}

/** Requests processed inside hosted batches (canceled and expired ones never were, so are not here). */
interface HostedRequestCounters {
  /** Processed: succeeded plus errored. */
  requests: number;
  succeeded: number;
  errored: number;
  /** Errored requests by the API error type of their result line. */
  byErrorType: Record<string, number>;
  /** Token usage of succeeded hosted requests. */
  tokens: { input: number; output: number; cacheCreation: number; cacheRead: number };
}

export interface RequestCounters {
  /** API requests answered (or reset/hung), control requests excluded. */
  requests: number;
  /** By HTTP status as a string; "0" for resets and hangs. */
  byStatus: Record<string, number>;
  /** By error type (API types plus connection_reset and hang). */
  byErrorType: Record<string, number>;
  /** By route: /v1/messages, /v1/messages/count_tokens, /v1/models, other. */
  byPath: Record<string, number>;
  /** Token usage of successful /v1/messages replies. */
  tokens: { input: number; output: number; cacheCreation: number; cacheRead: number };
  /** 429s by cause. */
  rateLimited: Record<RateLimitCause, number>;
  /** Faults injected by markers, scripts and probabilities (hosted requests included). */
  faultsInjected: number;
  hostedRequests: HostedRequestCounters;
}

const KNOWN_PATHS = new Set([
  '/v1/messages',
  '/v1/messages/count_tokens',
  '/v1/messages/batches',
  '/v1/models',
]);
const BATCHES_PREFIX = '/v1/messages/batches/';

function emptyCounters(): RequestCounters {
  return {
    requests: 0,
    byStatus: {},
    byErrorType: {},
    byPath: {},
    tokens: { input: 0, output: 0, cacheCreation: 0, cacheRead: 0 },
    rateLimited: {
      requests: 0,
      input_tokens: 0,
      output_tokens: 0,
      injected: 0,
      spend_cap: 0,
      concurrency: 0,
      batch_queue: 0,
    },
    faultsInjected: 0,
    hostedRequests: {
      requests: 0,
      succeeded: 0,
      errored: 0,
      byErrorType: {},
      tokens: { input: 0, output: 0, cacheCreation: 0, cacheRead: 0 },
    },
  };
}

export class RequestLog {
  #ring: Array<RequestLogEntry | undefined>;
  #seq = 0;
  #stats = emptyCounters();

  constructor(readonly capacity: number) {
    this.#ring = new Array<RequestLogEntry | undefined>(capacity);
  }

  /** Numbers and stores the entry (the object itself is kept: callers must not reuse it). */
  record(entry: RequestLogEntry): void {
    entry.seq = ++this.#seq;
    if (this.capacity > 0) this.#ring[entry.seq % this.capacity] = entry;
    const s = this.#stats;
    if (entry.fault !== null) s.faultsInjected++;
    if (entry.batchId !== null) {
      countHosted(s.hostedRequests, entry);
      return;
    }
    s.requests++;
    const status = String(entry.status);
    s.byStatus[status] = (s.byStatus[status] ?? 0) + 1;
    if (entry.errorType !== null) s.byErrorType[entry.errorType] = (s.byErrorType[entry.errorType] ?? 0) + 1;
    const path = KNOWN_PATHS.has(entry.path)
      ? entry.path
      : entry.path.startsWith('/v1/models/')
        ? '/v1/models'
        : entry.path.startsWith(BATCHES_PREFIX)
          ? '/v1/messages/batches'
          : 'other';
    s.byPath[path] = (s.byPath[path] ?? 0) + 1;
    if (entry.rateLimit !== null) s.rateLimited[entry.rateLimit]++;
    if (entry.status === 200 && entry.path === '/v1/messages') {
      s.tokens.input += entry.inputTokens;
      s.tokens.output += entry.outputTokens;
      s.tokens.cacheCreation += entry.cacheCreationInputTokens;
      s.tokens.cacheRead += entry.cacheReadInputTokens;
    }
  }

  /** Entries with seq > `sinceSeq`, oldest first, at most `limit` of them (the newest ones). */
  entries(sinceSeq = 0, limit = Number.POSITIVE_INFINITY): RequestLogEntry[] {
    const first = Math.max(sinceSeq + 1, this.#seq - this.capacity + 1, 1);
    const from = Math.max(first, this.#seq - limit + 1);
    const out: RequestLogEntry[] = [];
    for (let seq = from; seq <= this.#seq; seq++) {
      const entry = this.#ring[seq % this.capacity];
      if (entry !== undefined) out.push({ ...entry });
    }
    return out;
  }

  counters(): RequestCounters {
    return structuredClone(this.#stats);
  }

  /** The seq of the latest entry (0 when none). */
  get lastSeq(): number {
    return this.#seq;
  }

  clear(): void {
    this.#ring = new Array<RequestLogEntry | undefined>(this.capacity);
    this.#seq = 0;
    this.#stats = emptyCounters();
  }
}

function countHosted(h: HostedRequestCounters, entry: RequestLogEntry): void {
  h.requests++;
  if (entry.errorType === null) {
    h.succeeded++;
    h.tokens.input += entry.inputTokens;
    h.tokens.output += entry.outputTokens;
    h.tokens.cacheCreation += entry.cacheCreationInputTokens;
    h.tokens.cacheRead += entry.cacheReadInputTokens;
  } else {
    h.errored++;
    h.byErrorType[entry.errorType] = (h.byErrorType[entry.errorType] ?? 0) + 1;
  }
}
