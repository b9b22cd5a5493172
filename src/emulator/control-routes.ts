/**
 * The control API over HTTP, under `/_emulator/` (a prefix the real API does not use). It needs no
 * API key, is not written to the request log, and answers with JSON; bad input gets the API's error
 * shape (400 invalid_request_error naming the field).
 *
 *   GET  /_emulator/stats                      → EmulatorStats
 *   GET  /_emulator/log?since=SEQ&limit=N      → { entries: RequestLogEntry[], lastSeq }
 *   POST /_emulator/reset                      → { ok: true }
 *   GET  /_emulator/faults                     → FaultPlan
 *   PUT  /_emulator/faults       FaultPlan     → FaultPlan
 *   PUT  /_emulator/latency      LatencyOptions→ { ok: true }
 *   PUT  /_emulator/limits       LimitsOption | null → { ok: true }
 *   GET  /_emulator/credits                    → { balance: number | null }
 *   PUT  /_emulator/credits      CreditsOptions | null → { balance }
 *   POST /_emulator/credits/top-up { amount }  → { balance }
 *   POST /_emulator/revoke       { key }       → { ok: true }
 *   POST /_emulator/restore      { key }       → { ok: true }
 *   POST /_emulator/spend-cap    { on }        → { spendCapReached }
 *   PUT  /_emulator/max-concurrent { maxConcurrent: N | null } → { maxConcurrent }
 *   PUT  /_emulator/batches      { startDelayMs?, processingMs?, maxRequests?, maxBytes?, queueLimit?, expiryMs?,
 *                                  createReplyDelayMs?, resultsPauseAfterLines?, resultsPauseMs? }
 *                                              → the hosted batches' settings now in force
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  batchesBodySchema,
  keyBodySchema,
  maxConcurrentBodySchema,
  spendCapBodySchema,
  topUpBodySchema,
  type EmulatorControl,
} from './control.js';
import type { FaultPlan } from './fault-plan.js';
import { EmulatorOptionsError } from './option-error.js';
import { parseOption } from './option-schema.js';
import type { CreditsOptions, LatencyOptions, LimitsOption } from './options.js';
import { sendError, sendJson } from './respond.js';

export const CONTROL_PREFIX = '/_emulator/';
/** Control bodies are small JSON documents. The values are validated by the control methods. */
export const CONTROL_MAX_BODY_BYTES = 1024 * 1024;

const OK = '{"ok":true}';

export function handleControl(
  control: EmulatorControl,
  requestId: string,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string | null,
  body: Buffer | null,
): void {
  if (body === null) {
    sendError(
      res,
      413,
      requestId,
      'request_too_large',
      `Control requests are limited to ${CONTROL_MAX_BODY_BYTES} bytes.`,
    );
    return;
  }
  const route = `${req.method ?? 'GET'} ${path.slice(CONTROL_PREFIX.length)}`;
  try {
    const result = dispatch(control, route, query, body);
    if (result === undefined) {
      sendError(res, 404, requestId, 'not_found_error', `${route}: no such control endpoint`);
    } else {
      sendJson(res, 200, requestId, result);
    }
  } catch (err) {
    if (err instanceof EmulatorOptionsError) {
      sendError(res, 400, requestId, 'invalid_request_error', err.message);
    } else if (err instanceof SyntaxError) {
      // JSON.parse quotes the input in its message, and a revoke body holds a key: say less.
      sendError(res, 400, requestId, 'invalid_request_error', 'body: invalid JSON');
    } else {
      sendError(res, 500, requestId, 'api_error', err instanceof Error ? err.message : String(err));
    }
  }
}

/** The JSON answer, or undefined for an unknown route. */
function dispatch(
  control: EmulatorControl,
  route: string,
  query: string | null,
  body: Buffer,
): string | undefined {
  switch (route) {
    case 'GET stats':
      return JSON.stringify(control.stats());
    case 'GET log': {
      const params = new URLSearchParams(query ?? '');
      const entries = control.log({
        sinceSeq: numberParam(params, 'since'),
        limit: numberParam(params, 'limit'),
      });
      return JSON.stringify({ entries, lastSeq: control.stats().lastSeq });
    }
    case 'POST reset':
      control.reset();
      return OK;
    case 'GET faults':
      return JSON.stringify(control.faults());
    case 'PUT faults':
      control.setFaults(parse(body) as FaultPlan);
      return JSON.stringify(control.faults());
    case 'PUT latency':
      control.setLatency(parse(body) as LatencyOptions);
      return OK;
    case 'PUT limits':
      control.setLimits(parse(body) as LimitsOption | null);
      return OK;
    case 'GET credits':
      return JSON.stringify({ balance: control.stats().creditBalance });
    case 'PUT credits':
      control.setCredits(parse(body) as CreditsOptions | null);
      return JSON.stringify({ balance: control.stats().creditBalance });
    case 'POST credits/top-up':
      return JSON.stringify({
        balance: control.topUp(parseOption(topUpBodySchema, parse(body), 'body').amount),
      });
    case 'POST revoke':
      control.revokeKey(parseOption(keyBodySchema, parse(body), 'body', true).key);
      return OK;
    case 'POST restore':
      control.restoreKey(parseOption(keyBodySchema, parse(body), 'body', true).key);
      return OK;
    case 'POST spend-cap':
      control.setSpendCap(parseOption(spendCapBodySchema, parse(body), 'body').on);
      return JSON.stringify({ spendCapReached: control.stats().spendCapReached });
    case 'PUT batches':
      return JSON.stringify(control.setBatches(parseOption(batchesBodySchema, parse(body), 'body')));
    case 'PUT max-concurrent':
      control.setMaxConcurrent(parseOption(maxConcurrentBodySchema, parse(body), 'body').maxConcurrent);
      return JSON.stringify({ maxConcurrent: control.stats().maxConcurrent });
    default:
      return undefined;
  }
}

function parse(body: Buffer): unknown {
  const text = body.toString('utf8').trim();
  return text === '' ? undefined : JSON.parse(text);
}

function numberParam(params: URLSearchParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === null) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new EmulatorOptionsError(name, text, 'a number');
  return n;
}
