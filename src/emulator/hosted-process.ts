/**
 * One request of a hosted Message Batch, decided by the live path's own steps (message-outcome.ts):
 * the same validator, model and permission checks, attempt count, spend cap and credits, markers and
 * fault plan, prompt cache and reply, so a prompt meets the same fate hosted as live. Its result is
 * what the API puts in the results file (SDK 1.14 resources/messages/batches.d.ts,
 * MessageBatchResult): `{"type":"succeeded","message":Message}` with `usage.service_tier: "batch"`,
 * or `{"type":"errored","error":ErrorResponse}`.
 *
 * Params are validated here, while processing, not at creation: "Validation of the params object for
 * each message request is performed asynchronously, and validation errors are returned when
 * processing of the entire batch has ended" (Anthropic docs, build-with-claude/batch-processing,
 * "Batch limitations"). So a bad request ends `errored` with invalid_request_error.
 *
 * What only the live path has does not apply: rate-limit buckets and the concurrency limit (hosted
 * requests take none of the live budget), latency (processing time replaces it) and streaming (a
 * `stream: true` request gets the plain Message). A fault below the API (a reset, a hang, an edge
 * page) has no result line of its own: it ends the request `errored` with api_error, as a failure
 * inside the API's backend would.
 */
import { DEFAULT_MESSAGES, errorBody, wireShape } from './api-error.js';
import { isMidStreamFault, type InjectedFault } from './fault-plan.js';
import type { HostedBatch } from './hosted-batches.js';
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
  type Refusal,
} from './message-outcome.js';
import type { RequestLogEntry } from './request-log.js';
import type { EmulatorState } from './state.js';

export const BATCHES_PATH = '/v1/messages/batches';

/** Brings every hosted batch up to the emulator's clock. */
export function advanceBatches(state: EmulatorState): void {
  state.batches.advance(state.clock(), (batch, index, at) => processRequest(state, batch, index, at));
}

function processRequest(
  state: EmulatorState,
  batch: HostedBatch,
  index: number,
  at: number,
): { json: string; ok: boolean } {
  const entry = newEntry(state, 'POST', BATCHES_PATH);
  entry.at = at;
  entry.batchId = batch.id;
  const params = batch.requests[index]?.params;
  if (typeof (params as { model?: unknown } | null)?.model === 'string') {
    entry.model = (params as { model: string }).model;
  }
  const checked = checkParams(state, batch.key, params, 'create');
  if ('refusal' in checked) return errored(state, entry, wireError(state, checked.refusal));
  const request = checked.request;
  const a = beginAttempt(state, request, entry);
  const refusal = accountRefusal(state, entry);
  if (refusal !== null) return errored(state, entry, wireError(state, refusal));
  const fault = decideFault(state, a);
  if (fault !== null) {
    entry.fault = fault.source;
    return errored(state, entry, faultError(state, fault));
  }
  const { breakpoints, cached } = lookUpCache(state, request, a);
  const { id, reply, usage } = buildReply(state, request, a, cached, entry, 'batch');
  // The reply is complete the moment it is processed: its prefix is cached from then on.
  state.cache.commit(breakpoints);
  return {
    json: `{"type":"succeeded","message":${JSON.stringify(messageJson(id, request.model, reply, usage))}}`,
    ok: true,
  };
}

/** An error as it goes on the wire: the status and type already decided. */
interface WireError extends Refusal {
  status: number;
  billing: boolean;
}

/** The error a fault leaves in a result line, with the status and type a live call would get. */
function faultError(state: EmulatorState, fault: InjectedFault): WireError {
  // API error types and error codes are exactly the faults a stream can also meet mid-way; the rest
  // (edge pages, resets, hangs) have no JSON error of their own.
  if (!isMidStreamFault(fault.type) || fault.type === 'connection_reset') {
    return { status: 500, type: 'api_error', message: DEFAULT_MESSAGES.api_error, billing: false };
  }
  const shape = errorShape(state, fault.type);
  return { ...shape, billing: fault.type === 'billing_error' || shape.type === 'billing_error' };
}

/** A refusal by a check (validation, model, account): sent as a live call would send it. */
function wireError(state: EmulatorState, refusal: Refusal): WireError {
  // An empty balance is a 400 invalid_request_error by default (billingErrorStatus).
  return {
    ...refusal,
    ...wireShape(refusal.type, state.billingErrorStatus),
    billing: refusal.type === 'billing_error',
  };
}

function errored(
  state: EmulatorState,
  entry: RequestLogEntry,
  error: WireError,
): { json: string; ok: false } {
  entry.status = error.status;
  entry.errorType = error.type;
  entry.billing = error.billing;
  state.log.record(entry);
  return {
    json: `{"type":"errored","error":${errorBody(error.type, error.message, entry.requestId, error.details)}}`,
    ok: false,
  };
}
