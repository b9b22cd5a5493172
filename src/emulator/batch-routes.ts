/**
 * The hosted Message Batches API (anthropic-api.md, "Message Batches API"; shapes from SDK 1.14
 * resources/messages/batches.d.ts and the request each method makes in batches.js):
 *
 *   POST   /v1/messages/batches                 create  → MessageBatch
 *   GET    /v1/messages/batches                 list    → { data, has_more, first_id, last_id }
 *   GET    /v1/messages/batches/{id}            retrieve → MessageBatch
 *   POST   /v1/messages/batches/{id}/cancel     cancel  → MessageBatch (processing_status canceling)
 *   DELETE /v1/messages/batches/{id}            delete  → { id, type: "message_batch_deleted" }
 *   GET    /v1/messages/batches/{id}/results    results → JSONL, one line per request
 *
 * Creation checks the batch as a whole (`requests` a non-empty list within `batchesMaxRequests`,
 * each with a `custom_id` matching the API's pattern, unique in the batch, and a `params` object)
 * and refuses all of it with 400 invalid_request_error naming the field; the body size limit
 * (`batchesMaxBytes`, 413) is the server's, as for /v1/messages. Each request's params are validated
 * while it is processed (hosted-process.ts). Every call first brings the batches up to the clock.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostedBatch, HostedRequest } from './hosted-batches.js';
import { advanceBatches, BATCHES_PATH } from './hosted-process.js';
import type { RequestLogEntry } from './request-log.js';
import { ok, reject, sendJson } from './respond.js';
import type { EmulatorState } from './state.js';

const BATCHES_PREFIX = `${BATCHES_PATH}/`;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;
/** The API's page size bounds for list (SDK BatchListParams: "Defaults to `20`. Ranges from `1` to `1000`."). */
const DEFAULT_PAGE = 20;
const MAX_PAGE = 1000;
/** Result lines are written in groups of this many, waiting for the socket to drain between groups. */
const LINES_PER_WRITE = 1000;

export function isBatchesPath(path: string): boolean {
  return path === BATCHES_PATH || path.startsWith(BATCHES_PREFIX);
}

/** Whether a request goes to batch creation, whose body limit is `batchesMaxBytes`. */
export function isBatchCreate(method: string | undefined, path: string): boolean {
  return method === 'POST' && path === BATCHES_PATH;
}

export function handleBatches(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
  key: string,
  path: string,
  query: string | null,
  body: Buffer,
): void {
  advanceBatches(state);
  const method = req.method ?? 'GET';
  if (path === BATCHES_PATH) {
    if (method === 'POST') create(state, req, res, entry, key, body);
    else if (method === 'GET') list(state, req, res, entry, query);
    else notFound(state, res, entry, method, path);
    return;
  }
  const rest = path.slice(BATCHES_PREFIX.length).split('/');
  const id = safeDecode(rest[0] ?? '');
  const action = rest.length === 1 ? '' : rest.length === 2 ? rest[1] : null;
  const route = `${method} ${action ?? '?'}`;
  if (!['GET ', 'DELETE ', 'POST cancel', 'GET results'].includes(route)) {
    notFound(state, res, entry, method, path);
    return;
  }
  const batch = state.batches.get(id);
  if (batch === undefined) {
    reject(state, res, entry, 'not_found_error', `Message Batch ${id} not found`);
    return;
  }
  if (route === 'GET ') ok(state, res, entry, JSON.stringify(batchJson(batch, baseUrl(req))));
  else if (route === 'POST cancel') {
    state.batches.cancel(batch, state.clock());
    ok(state, res, entry, JSON.stringify(batchJson(batch, baseUrl(req))));
  } else if (route === 'DELETE ') {
    if (batch.status !== 'ended') {
      reject(
        state,
        res,
        entry,
        'invalid_request_error',
        `Message Batch ${id} cannot be deleted while its processing_status is ${batch.status}: cancel it and wait until it has ended.`,
      );
      return;
    }
    state.batches.delete(batch);
    ok(state, res, entry, JSON.stringify({ id, type: 'message_batch_deleted' }));
  } else sendResults(state, res, entry, batch, state.seed);
}

function create(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
  key: string,
  body: Buffer,
): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    reject(
      state,
      res,
      entry,
      'invalid_request_error',
      'There was an error parsing the body of your request: invalid JSON',
    );
    return;
  }
  const requests = checkRequests(parsed, state.batches.settings.maxRequests);
  if (typeof requests === 'string') {
    reject(state, res, entry, 'invalid_request_error', requests);
    return;
  }
  const limit = state.batches.settings.queueLimit;
  if (limit !== null) {
    const waiting = state.batches.waitingRequests();
    if (waiting + requests.length > limit) {
      // Long enough for the excess to be processed at one batch's pace: an upper bound when several run.
      const excess = waiting + requests.length - limit;
      const seconds = Math.max(1, Math.ceil((excess * state.batches.settings.processingMs) / 1000));
      entry.rateLimit = 'batch_queue';
      entry.retryAfterSeconds = seconds;
      reject(
        state,
        res,
        entry,
        'rate_limit_error',
        `Too many requests are waiting in Message Batches: ${waiting} waiting + ${requests.length} in this batch > the limit of ${limit}. Please try again later.`,
        ['retry-after', String(seconds)],
      );
      return;
    }
  }
  const batch = state.batches.create(state.ids.next('msgbatch'), key, requests, state.clock());
  // A batch that starts at once with no processing time may already be done.
  advanceBatches(state);
  const delayMs = state.batches.settings.createReplyDelayMs;
  if (delayMs <= 0) {
    ok(state, res, entry, JSON.stringify(batchJson(batch, baseUrl(req))));
    return;
  }
  // The batch exists now; its id reaches the client only after the delay (a crash window). Logged
  // as accepted at once, as a client killed meanwhile has still created it.
  entry.status = 200;
  state.log.record(entry);
  const base = baseUrl(req);
  state.later(delayMs, () => {
    if (res.destroyed) return;
    advanceBatches(state);
    sendJson(
      res,
      200,
      entry.requestId,
      JSON.stringify(batchJson(batch, base)),
      state.limiter.headers(entry.model),
    );
  });
}

/** The requests of a create body, or the message of a 400 naming the field. */
function checkRequests(body: unknown, maxRequests: number): HostedRequest[] | string {
  if (!isObj(body)) return 'Request body must be a JSON object.';
  const requests = body.requests;
  if (requests === undefined) return 'requests: Field required';
  if (!Array.isArray(requests)) return 'requests: Input should be a valid list';
  if (requests.length === 0) return 'requests: List should have at least 1 item after validation, not 0';
  if (requests.length > maxRequests) {
    return `requests: List should have at most ${maxRequests} items after validation, not ${requests.length}`;
  }
  const out: HostedRequest[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < requests.length; i++) {
    const r: unknown = requests[i];
    if (!isObj(r)) return `requests.${i}: Input should be a valid dictionary`;
    const customId = r.custom_id;
    if (customId === undefined) return `requests.${i}.custom_id: Field required`;
    if (typeof customId !== 'string') return `requests.${i}.custom_id: Input should be a valid string`;
    if (!CUSTOM_ID.test(customId)) {
      return `requests.${i}.custom_id: String should match pattern '${CUSTOM_ID.source}'`;
    }
    const first = seen.get(customId);
    if (first !== undefined) {
      return `requests.${i}.custom_id: ${JSON.stringify(customId)} is also the custom_id of requests.${first}; custom_id must be unique within a batch`;
    }
    seen.set(customId, i);
    if (r.params === undefined) return `requests.${i}.params: Field required`;
    if (!isObj(r.params)) return `requests.${i}.params: Input should be a valid dictionary`;
    out.push({ customId, params: r.params });
  }
  return out;
}

function list(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
  query: string | null,
): void {
  const params = new URLSearchParams(query ?? '');
  const limitText = params.get('limit');
  const limit = limitText === null ? DEFAULT_PAGE : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    reject(
      state,
      res,
      entry,
      'invalid_request_error',
      `limit: Input should be an integer from 1 to ${MAX_PAGE}, got ${JSON.stringify(limitText)}`,
    );
    return;
  }
  const beforeId = params.get('before_id');
  const afterId = params.get('after_id');
  if (beforeId !== null && afterId !== null) {
    reject(state, res, entry, 'invalid_request_error', 'before_id and after_id: give at most one of them');
    return;
  }
  const cursorId = beforeId ?? afterId;
  const cursor = cursorId === null ? null : state.batches.seqOf(cursorId);
  if (cursorId !== null && cursor === undefined) {
    const name = beforeId === null ? 'after_id' : 'before_id';
    reject(state, res, entry, 'invalid_request_error', `${name}: no Message Batch ${cursorId}`);
    return;
  }
  const all = state.batches.newestFirst();
  let page: HostedBatch[];
  let hasMore: boolean;
  if (beforeId !== null && cursor != null) {
    // The page of newer batches nearest the cursor, still newest first.
    const newer = all.filter((b) => b.seq > cursor);
    page = newer.slice(Math.max(0, newer.length - limit));
    hasMore = newer.length > limit;
  } else {
    const older = cursor == null ? all : all.filter((b) => b.seq < cursor);
    page = older.slice(0, limit);
    hasMore = older.length > limit;
  }
  const base = baseUrl(req);
  ok(
    state,
    res,
    entry,
    JSON.stringify({
      data: page.map((b) => batchJson(b, base)),
      has_more: hasMore,
      first_id: page[0]?.id ?? null,
      last_id: page[page.length - 1]?.id ?? null,
    }),
  );
}

/**
 * The results file: one line per request, `{"custom_id", "result"}`, in an order drawn from the seed
 * rather than the input's ("Results are not guaranteed to be in the same order as requests",
 * batches.d.ts), so a consumer that matches by position fails here first.
 */
function sendResults(
  state: EmulatorState,
  res: ServerResponse,
  entry: RequestLogEntry,
  batch: HostedBatch,
  seed: number,
): void {
  if (batch.status !== 'ended') {
    reject(
      state,
      res,
      entry,
      'not_found_error',
      `Results for Message Batch ${batch.id} are not available until processing has ended (processing_status ${batch.status}).`,
    );
    return;
  }
  entry.status = 200;
  state.log.record(entry);
  const order = shuffledIndexes(batch.requests.length, seed);
  res.writeHead(200, ['content-type', 'application/binary', 'request-id', entry.requestId]);
  // A configured pause midway (the lines before it sent): a client killed meanwhile has read part.
  const { resultsPauseAfterLines, resultsPauseMs } = state.batches.settings;
  let pauseAt = resultsPauseAfterLines !== null && resultsPauseMs > 0 ? resultsPauseAfterLines : null;
  let next = 0;
  const writeSome = (): void => {
    // The client went away (killed, timed out) during a pause or a drain: nothing more to send.
    if (res.destroyed) return;
    while (next < order.length) {
      if (pauseAt !== null && next >= pauseAt) {
        pauseAt = null;
        state.later(resultsPauseMs, writeSome);
        return;
      }
      let chunk = '';
      const end = Math.min(order.length, next + LINES_PER_WRITE, pauseAt ?? Number.POSITIVE_INFINITY);
      for (; next < end; next++) {
        const i = order[next] ?? 0;
        const customId = batch.requests[i]?.customId ?? '';
        chunk += `{"custom_id":${JSON.stringify(customId)},"result":${batch.results[i] ?? '{"type":"expired"}'}}\n`;
      }
      if (!res.write(chunk)) {
        res.once('drain', writeSome);
        return;
      }
    }
    res.end();
  };
  writeSome();
}

/** 0..n-1 in a seeded order (Fisher-Yates with a small xorshift generator). */
function shuffledIndexes(n: number, seed: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  let x = (seed ^ 0x2545f491) >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const j = x % (i + 1);
    const t = out[i] as number;
    out[i] = out[j] as number;
    out[j] = t;
  }
  return out;
}

/** The MessageBatch object (batches.d.ts, MessageBatch). */
function batchJson(b: HostedBatch, base: string): Record<string, unknown> {
  const ended = b.status === 'ended';
  const n = b.requests.length;
  return {
    id: b.id,
    type: 'message_batch',
    processing_status: b.status,
    request_counts: {
      processing: ended ? 0 : n,
      succeeded: ended ? b.counts.succeeded : 0,
      errored: ended ? b.counts.errored : 0,
      canceled: ended ? b.counts.canceled : 0,
      expired: ended ? b.counts.expired : 0,
    },
    ended_at: iso(b.endedAt),
    created_at: iso(b.createdAt),
    expires_at: iso(b.expiresAt),
    archived_at: null,
    cancel_initiated_at: iso(b.cancelInitiatedAt),
    results_url: ended ? `${base}${BATCHES_PREFIX}${b.id}/results` : null,
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Where this emulator was reached, for `results_url` (the SDK fetches that absolute URL). */
function baseUrl(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

function notFound(
  state: EmulatorState,
  res: ServerResponse,
  entry: RequestLogEntry,
  method: string,
  path: string,
): void {
  reject(state, res, entry, 'not_found_error', `${method} ${path}: Not Found`);
}

function isObj(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
