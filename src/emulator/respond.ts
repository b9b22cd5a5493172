/**
 * Writing responses. Headers go as one flat [name, value, ...] array to writeHead, which skips
 * Node's per-header bookkeeping of setHeader; the fixed part is shared.
 */
import type { ServerResponse } from 'node:http';
import { errorBody, type ApiErrorType } from './api-error.js';

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
