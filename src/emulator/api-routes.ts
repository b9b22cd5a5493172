/**
 * The Messages API surface: `POST /v1/messages`, `POST /v1/messages/count_tokens`, `GET /v1/models`
 * and `GET /v1/models/{id}`. The order of checks follows the API's: body size (413, decided by the
 * server before this runs), authentication, headers, validation, model, then account state (spend cap,
 * credits), injected faults, rate limits, and finally the reply.
 *
 * Injected faults are decided before rate limits and consume no bucket: they stand for the API failing
 * a request, which the runner must not mistake for capacity spent.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  DEFAULT_MESSAGES,
  EDGE_FAULTS,
  edgePage,
  errorBody,
  errorCodeRetries,
  isApiErrorType,
  type ApiErrorType,
  type ErrorCode,
} from './api-error.js';
import { handleBatches, isBatchesPath } from './batch-routes.js';
import { uniformFromKey, type InjectedFault, type MidStreamFault } from './fault-plan.js';
import type { Markers } from './markers.js';
import {
  accountRefusal,
  beginAttempt,
  buildReply,
  checkParams,
  decideFault,
  errorShape,
  lookUpCache,
  messageJson,
  newEntry,
} from './message-outcome.js';
import { analyzePrompt } from './prompt-analysis.js';
import { isRefusal } from './rate-limiter.js';
import type { RequestLogEntry } from './request-log.js';
import { ok, reject, sendError, sendJson } from './respond.js';
import type { EmulatorState } from './state.js';
import { streamMessage, type StreamFault } from './stream-reply.js';
import type { MessagesRequest } from './validate-request.js';

/**
 * The live API's words for a concurrency limit (public reports: anthropics/anthropic-sdk-python#496,
 * 2024; cline/cline#4351, 2025): the cure is fewer requests in flight, not fewer per minute.
 */
const CONCURRENCY_MESSAGE =
  'Number of concurrent connections has exceeded your rate limit. Please try again later or contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.';
const CONCURRENCY_RETRY_AFTER_SECONDS = 1;
const MODELS_PREFIX = '/v1/models/';

/** Handles one API request whose body has been read (null: it was over maxBodyBytes). */
export function handleApi(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string | null,
  body: Buffer | null,
): void {
  const entry = newEntry(state, req.method ?? 'GET', path);
  if (body === null) {
    reject(state, res, entry, 'request_too_large', DEFAULT_MESSAGES.request_too_large);
    return;
  }
  const headers = req.headers;
  const key = apiKeyOf(headers);
  if (key === null) {
    reject(state, res, entry, 'authentication_error', 'x-api-key header is required');
    return;
  }
  if (!state.keyAccepted(key)) {
    reject(state, res, entry, 'authentication_error', 'invalid x-api-key');
    return;
  }
  if (state.requireVersion && headers['anthropic-version'] === undefined) {
    reject(state, res, entry, 'invalid_request_error', 'anthropic-version: header is required');
    return;
  }
  const method = req.method;
  if (path === '/v1/messages' && method === 'POST') createMessage(state, req, res, entry, key, body);
  else if (path === '/v1/messages/count_tokens' && method === 'POST')
    countTokens(state, res, entry, key, body);
  else if (isBatchesPath(path)) handleBatches(state, req, res, entry, key, path, query, body);
  else if (path === '/v1/models' && method === 'GET') {
    ok(state, res, entry, state.models.list(query === null ? null : new URLSearchParams(query)));
  } else if (path.startsWith(MODELS_PREFIX) && method === 'GET') {
    const id = safeDecode(path.slice(MODELS_PREFIX.length));
    const model = state.models.body(id);
    if (model === undefined) reject(state, res, entry, 'not_found_error', `model: ${id}`);
    else ok(state, res, entry, model);
  } else {
    reject(state, res, entry, 'not_found_error', `${method ?? 'GET'} ${path}: Not Found`);
  }
}

function createMessage(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
  key: string,
  body: Buffer,
): void {
  const request = parseRequest(state, res, entry, key, body, 'create');
  if (request === null) return;
  const model = request.model;
  const a = beginAttempt(state, request, entry);
  const { prompt, attempt } = a;

  const refusal = accountRefusal(state, entry);
  if (refusal !== null) {
    // No retry-after on a spend cap: waiting does not lift it.
    reject(state, res, entry, refusal.type, refusal.message, null, refusal.details);
    return;
  }

  const streamed = request.stream === true;
  const fault = decideFault(state, a);
  let midStream: InjectedFault | null = streamed ? markerStreamFault(state, a.markers, attempt) : null;
  if (fault !== null) {
    if (streamed && fault.afterDeltas !== null) {
      midStream ??= fault;
    } else {
      injectFault(state, req, res, entry, fault, model, latencyMs(state, prompt.promptHash, attempt, 0));
      return;
    }
  }

  if (state.maxConcurrent !== null && state.inFlight >= state.maxConcurrent) {
    entry.rateLimit = 'concurrency';
    entry.retryAfterSeconds = CONCURRENCY_RETRY_AFTER_SECONDS;
    reject(state, res, entry, 'rate_limit_error', CONCURRENCY_MESSAGE, [
      'retry-after',
      String(CONCURRENCY_RETRY_AFTER_SECONDS),
    ]);
    return;
  }

  const { breakpoints, cached } = lookUpCache(state, request, a);
  const admission = state.limiter.admit(
    model,
    prompt.inputTokens - cached.cacheReadTokens,
    request.max_tokens,
  );
  if (isRefusal(admission)) {
    entry.rateLimit = admission.limit;
    entry.retryAfterSeconds = admission.retryAfterSeconds;
    reject(state, res, entry, 'rate_limit_error', admission.message, [
      'retry-after',
      String(admission.retryAfterSeconds),
    ]);
    return;
  }
  // In flight from admission until the response has ended (or the client went away). Counted only
  // while a limit is set, so the common unlimited case pays nothing; a limit set at run time thus
  // does not count requests already in flight.
  if (state.maxConcurrent !== null) {
    state.inFlight++;
    res.once('close', () => state.inFlight--);
  }

  const { id, reply, usage } = buildReply(state, request, a, cached, entry, null);
  const requestId = entry.requestId;
  if (streamed) {
    const l = state.latency;
    const firstMs = latencyMs(state, prompt.promptHash, attempt, 0);
    streamMessage(
      res,
      ['request-id', requestId, ...state.limiter.headers(model)],
      { id, model, text: reply.text, stopReason: reply.stopReason, usage },
      { firstMs, perOutputTokenMs: l.perOutputTokenMs, later: (ms, fn) => state.later(ms, fn) },
      midStream === null ? null : streamFault(state, midStream, requestId),
      () => state.cache.commit(breakpoints),
      () => state.limiter.settle(admission, reply.outputTokens),
    );
    return;
  }
  const message = JSON.stringify(messageJson(id, model, reply, usage));
  state.later(latencyMs(state, prompt.promptHash, attempt, reply.outputTokens), () => {
    state.limiter.settle(admission, reply.outputTokens);
    // The prefix is cached once the response has begun (anthropic-api.md, prompt caching): requests
    // admitted before then missed it and pay the write too. A client already gone got nothing begun.
    if (!res.destroyed) state.cache.commit(breakpoints);
    sendJson(res, 200, requestId, message, state.limiter.headers(model));
  });
}

function countTokens(
  state: EmulatorState,
  res: ServerResponse,
  entry: RequestLogEntry,
  key: string,
  body: Buffer,
): void {
  const request = parseRequest(state, res, entry, key, body, 'count');
  if (request === null) return;
  const prompt = analyzePrompt(request);
  entry.promptHash = prompt.promptHash;
  entry.inputTokens = prompt.inputTokens;
  ok(state, res, entry, `{"input_tokens":${prompt.inputTokens}}`);
}

/** Parses and validates the body and checks the model; answers and returns null on failure. */
function parseRequest(
  state: EmulatorState,
  res: ServerResponse,
  entry: RequestLogEntry,
  key: string,
  body: Buffer,
  kind: 'create' | 'count',
): MessagesRequest | null {
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
    return null;
  }
  const checked = checkParams(state, key, parsed, kind);
  if (typeof (parsed as { model?: unknown } | null)?.model === 'string') {
    entry.model = (parsed as { model: string }).model;
  }
  if ('refusal' in checked) {
    reject(state, res, entry, checked.refusal.type, checked.refusal.message);
    return null;
  }
  return checked.request;
}

function markerStreamFault(
  state: EmulatorState,
  markers: Markers | null,
  attempt: number,
): InjectedFault | null {
  const marker = markers?.streamFault;
  if (marker == null || (marker.failFirst !== null && attempt > marker.failFirst)) return null;
  return {
    type: marker.type,
    retryAfterSeconds: state.faults.retryAfterSeconds,
    afterDeltas: marker.afterDeltas,
    source: 'marker',
  };
}

/** The `event: error` body a mid-stream fault sends (null: reset the connection instead). */
function streamFault(state: EmulatorState, fault: InjectedFault, requestId: string): StreamFault {
  const type = fault.type as MidStreamFault;
  if (type === 'connection_reset') return { afterDeltas: fault.afterDeltas ?? 0, errorBody: null };
  const shape = errorShape(state, type);
  return {
    afterDeltas: fault.afterDeltas ?? 0,
    errorBody: errorBody(shape.type, shape.message, requestId, shape.details),
  };
}

function injectFault(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
  fault: InjectedFault,
  model: string,
  delayMs: number,
): void {
  entry.fault = fault.source;
  const faultType = fault.type;
  if (faultType === 'connection_reset' || faultType === 'hang' || faultType === 'reset_mid_response') {
    entry.status = 0;
    entry.errorType = faultType;
    state.log.record(entry);
    // A hang keeps the socket open and unanswered until the client gives up or the emulator closes.
    if (faultType === 'connection_reset') state.later(delayMs, () => req.socket.destroy());
    if (faultType === 'reset_mid_response') {
      state.later(delayMs, () => {
        // The status line and headers of a success, a first part of its body, then a reset.
        res.writeHead(200, [
          'content-type',
          'application/json',
          'request-id',
          entry.requestId,
          'content-length',
          '4096',
          ...state.limiter.headers(model),
        ]);
        res.write(`{"id":"msg_${entry.requestId.slice(4)}","type":"message","role":"assistant",`, () =>
          res.destroy(),
        );
      });
    }
    return;
  }
  if (Object.hasOwn(EDGE_FAULTS, faultType)) {
    const edge = EDGE_FAULTS[faultType as keyof typeof EDGE_FAULTS];
    entry.status = edge.status;
    entry.errorType = faultType;
    state.log.record(entry);
    // What a proxy sends: no request-id, no rate-limit headers, no JSON.
    state.later(delayMs, () => {
      const body = edge.html ? edgePage(edge.status) : '';
      const headers = ['content-length', String(Buffer.byteLength(body))];
      if (edge.html) headers.push('content-type', 'text/html');
      res.writeHead(edge.status, headers);
      res.end(body);
    });
    return;
  }
  const shape = errorShape(state, faultType as ApiErrorType | ErrorCode);
  const extra: string[] = [];
  if (
    faultType === 'rate_limit_error' ||
    (!isApiErrorType(faultType) && errorCodeRetries(faultType as ErrorCode))
  ) {
    entry.rateLimit = 'injected';
    entry.retryAfterSeconds = fault.retryAfterSeconds;
    extra.push('retry-after', String(fault.retryAfterSeconds));
  }
  entry.status = shape.status;
  entry.errorType = shape.type;
  entry.billing = faultType === 'billing_error' || shape.type === 'billing_error';
  state.log.record(entry);
  const headers = [...state.limiter.headers(model), ...extra];
  state.later(delayMs, () =>
    sendError(res, shape.status, entry.requestId, shape.type, shape.message, headers, shape.details),
  );
}

function latencyMs(state: EmulatorState, promptHash: string, attempt: number, outputTokens: number): number {
  const l = state.latency;
  let ms = l.fixedMs + l.perOutputTokenMs * outputTokens;
  if (l.jitterMs > 0)
    ms += l.jitterMs * uniformFromKey(`latency\u0000${state.seed}\u0000${promptHash}\u0000${attempt}`);
  return ms;
}

/** The key from `x-api-key`, else from `Authorization: Bearer`; null when neither carries one. */
function apiKeyOf(headers: IncomingHttpHeaders): string | null {
  const xApiKey = headers['x-api-key'];
  if (typeof xApiKey === 'string' && xApiKey.length > 0) return xApiKey;
  const authorization = headers.authorization;
  if (
    authorization !== undefined &&
    authorization.length > 7 &&
    authorization.slice(0, 7).toLowerCase() === 'bearer '
  ) {
    const key = authorization.slice(7).trim();
    return key.length > 0 ? key : null;
  }
  return null;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
