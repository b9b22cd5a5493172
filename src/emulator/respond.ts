/**
 * Writing responses. Headers go as one flat [name, value, ...] array to writeHead, which skips
 * Node's per-header bookkeeping of setHeader; the fixed part is shared.
 */
import type { ServerResponse } from 'node:http';
import { errorBody, wireShape, type ApiErrorType } from './api-error.js';
import type { RequestLogEntry } from './request-log.js';
import type { EmulatorState } from './state.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  requestId: string,
  body: string,
  extraHeaders?: readonly string[] | null,
): void {
  const headers = [
    'content-type',
    'application/json',
    'request-id',
    requestId,
    'content-length',
    String(Buffer.byteLength(body)),
  ];
  if (extraHeaders != null) for (const h of extraHeaders) headers.push(h);
  res.writeHead(status, headers);
  res.end(body);
}

export function sendError(
  res: ServerResponse,
  status: number,
  requestId: string,
  type: ApiErrorType,
  message: string,
  extraHeaders?: readonly string[] | null,
  details?: Readonly<Record<string, unknown>>,
): void {
  sendJson(res, status, requestId, errorBody(type, message, requestId, details), extraHeaders);
}

/** Answers an error; the rate-limit headers of the request's model (if known) go with it, as the API's do. */
export function reject(
  state: EmulatorState,
  res: ServerResponse,
  entry: RequestLogEntry,
  type: ApiErrorType,
  message: string,
  extraHeaders?: readonly string[] | null,
  details?: Readonly<Record<string, unknown>>,
): void {
  const wire = wireShape(type, state.billingErrorStatus);
  entry.status = wire.status;
  entry.errorType = wire.type;
  entry.billing = type === 'billing_error';
  state.log.record(entry);
  const limits = state.limiter.headers(entry.model);
  const headers = extraHeaders == null ? limits : [...limits, ...extraHeaders];
  sendError(res, wire.status, entry.requestId, wire.type, message, headers, details);
}

export function ok(state: EmulatorState, res: ServerResponse, entry: RequestLogEntry, body: string): void {
  entry.status = 200;
  state.log.record(entry);
  sendJson(res, 200, entry.requestId, body, state.limiter.headers(entry.model));
}
