/**
 * The decisions behind one Messages create request, shared by the two paths that make them: a live
 * `POST /v1/messages` (api-routes.ts) and a request inside a hosted Message Batch (hosted-process.ts).
 * Both validate with the same validator, count attempts per prompt, meet the spend cap and credits,
 * take the same markers and fault plan, read and write the same prompt cache and build the same reply
 * with the same usage, so a prompt's fate does not depend on the path that carried it. What only the
 * live path has (rate-limit buckets, the concurrency limit, streaming, latency) stays in api-routes.ts.
 */
import {
  DEFAULT_MESSAGES,
  ERROR_CODES,
  isApiErrorType,
  wireShape,
  type ApiErrorType,
  type ErrorCode,
} from './api-error.js';
import type { InjectedFault } from './fault-plan.js';
import { parseMarkers, type Markers } from './markers.js';
import { analyzePrompt, type PromptAnalysis } from './prompt-analysis.js';
import type { CacheBreakpoint, CacheUsage } from './prompt-cache.js';
import type { Reply } from './replies.js';
import type { RequestLogEntry } from './request-log.js';
import type { EmulatorState } from './state.js';
import { validateMessagesRequest, type MessagesRequest } from './validate-request.js';

/** An answer that is not a reply: the error type, its message and any `error.details`. */
export interface Refusal {
  type: ApiErrorType;
  message: string;
  details?: Readonly<Record<string, unknown>>;
}

const SPEND_LIMIT_DETAILS = { error_code: 'enforced_spend_limit_reached' } as const;
const SPEND_LIMIT_MESSAGE = ERROR_CODES.enforced_spend_limit_reached.message;

/**
 * Validates parsed params, then checks the model and whether this key may use it: the typed request,
 * or the refusal (400, 404 or 403, in the API's order).
 */
export function checkParams(
  state: EmulatorState,
  key: string,
  parsed: unknown,
  kind: 'create' | 'count',
): { request: MessagesRequest } | { refusal: Refusal } {
  const request = validateMessagesRequest(parsed, kind, state.maxOutputTokens);
  if (typeof request === 'string') return { refusal: { type: 'invalid_request_error', message: request } };
  if (!state.models.has(request.model)) {
    return { refusal: { type: 'not_found_error', message: `model: ${request.model}` } };
  }
  if (state.modelForbidden(key, request.model)) {
    return { refusal: { type: 'permission_error', message: DEFAULT_MESSAGES.permission_error } };
  }
  return { request };
}

/** What the prompt says and which attempt of it this is. */
export interface Attempt {
  prompt: PromptAnalysis;
  markers: Markers | null;
  /** 1 for the first request with this prompt hash (on either path). */
  attempt: number;
}

/** Analyses the prompt and counts the attempt, noting both on the log entry. */
export function beginAttempt(
  state: EmulatorState,
  request: MessagesRequest,
  entry: RequestLogEntry,
): Attempt {
  const prompt = analyzePrompt(request);
  const attempt = state.attempts.next(prompt.promptHash);
  entry.promptHash = prompt.promptHash;
  entry.attempt = attempt;
  const markers = prompt.markerTexts === null ? null : parseMarkers(prompt.markerTexts);
  return { prompt, markers, attempt };
}

/** The spend cap, then an empty balance: the account's refusal, if any. */
export function accountRefusal(state: EmulatorState, entry: RequestLogEntry): Refusal | null {
  if (state.spendCapReached) {
    entry.rateLimit = 'spend_cap';
    return { type: 'rate_limit_error', message: SPEND_LIMIT_MESSAGE, details: SPEND_LIMIT_DETAILS };
  }
  if (state.credits?.exhausted() === true) {
    return { type: 'billing_error', message: DEFAULT_MESSAGES.billing_error };
  }
  return null;
}

/** The prompt's marker fault, else the fault plan's decision (which consumes a script step). */
export function decideFault(state: EmulatorState, a: Attempt): InjectedFault | null {
  const marker = a.markers?.fault;
  if (marker != null && (marker.failFirst === null || a.attempt <= marker.failFirst)) {
    return {
      type: marker.type,
      retryAfterSeconds: marker.retryAfterSeconds ?? state.faults.retryAfterSeconds,
      afterDeltas: null,
      source: 'marker',
    };
  }
  return state.faults.decide(a.prompt.promptHash, a.attempt);
}

/** Status, type, message and details of an API error type or an error code. */
export function errorShape(
  state: EmulatorState,
  type: ApiErrorType | ErrorCode,
): { status: number; type: ApiErrorType; message: string; details?: { error_code: ErrorCode } } {
  if (isApiErrorType(type))
    return { ...wireShape(type, state.billingErrorStatus), message: DEFAULT_MESSAGES[type] };
  const code = ERROR_CODES[type];
  return { status: code.status, type: code.type, message: code.message, details: { error_code: type } };
}

/** The breakpoints the model honours and what the cache holds for them now. */
export function lookUpCache(
  state: EmulatorState,
  request: MessagesRequest,
  a: Attempt,
): { breakpoints: CacheBreakpoint[] | null; cached: CacheUsage } {
  // A breakpoint under the model's minimum is ignored, as the API does: no read, no write.
  const breakpoints = state.cacheMinimums.cacheable(request.model, a.prompt.breakpoints);
  return { breakpoints, cached: state.cache.peek(breakpoints) };
}

export interface Usage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
  /** Only on hosted results (the SDK's `Usage.service_tier`, resources/messages/messages.d.ts). */
  service_tier?: 'batch';
}

/**
 * Builds the reply, charges the credits, fills in the log entry's figures and records it. The caller
 * commits the cache entry once the reply "has begun" on its path.
 */
export function buildReply(
  state: EmulatorState,
  request: MessagesRequest,
  a: Attempt,
  cached: CacheUsage,
  entry: RequestLogEntry,
  serviceTier: 'batch' | null,
): { id: string; reply: Reply; usage: Usage } {
  const prompt = a.prompt;
  const reply = state.replies.build(
    prompt.promptHash,
    request.max_tokens,
    a.markers?.stop ?? null,
    a.markers?.outputTokens ?? null,
  );
  const inputTokens = prompt.inputTokens - cached.cacheReadTokens - cached.cacheCreationTokens;
  state.credits?.charge(prompt.inputTokens, reply.outputTokens);
  entry.status = 200;
  entry.inputTokens = inputTokens;
  entry.outputTokens = reply.outputTokens;
  entry.cacheCreationInputTokens = cached.cacheCreationTokens;
  entry.cacheReadInputTokens = cached.cacheReadTokens;
  entry.stopReason = reply.stopReason;
  state.log.record(entry);
  const usage: Usage = {
    input_tokens: inputTokens,
    cache_creation_input_tokens: cached.cacheCreationTokens,
    cache_read_input_tokens: cached.cacheReadTokens,
    output_tokens: reply.outputTokens,
  };
  if (serviceTier !== null) usage.service_tier = serviceTier;
  return { id: state.ids.next('msg'), reply, usage };
}

/** The Message body of a reply, as the non-streamed API sends it. */
export function messageJson(id: string, model: string, reply: Reply, usage: Usage): Record<string, unknown> {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: reply.text }],
    stop_reason: reply.stopReason,
    stop_sequence: null,
    usage,
  };
}

export function newEntry(state: EmulatorState, method: string, path: string): RequestLogEntry {
  return {
    seq: 0,
    at: state.clock(),
    requestId: state.ids.next('req'),
    method,
    path,
    model: null,
    status: 0,
    errorType: null,
    billing: false,
    rateLimit: null,
    retryAfterSeconds: null,
    promptHash: null,
    attempt: null,
    inputTokens: 0,
    outputTokens: 0,
    cacheCreationInputTokens: 0,
    cacheReadInputTokens: 0,
    stopReason: null,
    fault: null,
    batchId: null,
  };
}
