import type { ApiFailure } from './api-failure.js';
import { TYPE_BY_STATUS } from './error-table.js';

/**
 * The status an error type is answered with by the live API (the first status the table maps to
 * it: `invalid_request_error` → 400, `billing_error` → 402, `overloaded_error` → 529).
 */
const STATUS_BY_TYPE: ReadonlyMap<string, number> = (() => {
  const out = new Map<string, number>();
  for (const [status, type] of Object.entries(TYPE_BY_STATUS)) {
    if (!out.has(type)) out.set(type, Number(status));
  }
  return out;
})();

/**
 * The failure an `errored` line of a hosted Message Batches result stands for. The line carries the
 * error body the live API would have answered (`{type: "error", error: {type, message}}`, per the
 * Message Batches docs) but no HTTP status: it is given the status the live API sends with that
 * type, so the one error table classifies it exactly as it would the live answer (a credit
 * balance too low is a 400 `invalid_request_error` there too). An unreadable body is an
 * `api_error`, which is retried, never lost.
 */
export function failureFromResultError(error: unknown, requestId: string | null = null): ApiFailure {
  const body = (error && typeof error === 'object' ? error : {}) as Record<string, unknown>;
  const inner = (body['error'] && typeof body['error'] === 'object' ? body['error'] : body) as Record<
    string,
    unknown
  >;
  const type = typeof inner['type'] === 'string' && inner['type'] !== 'error' ? inner['type'] : 'api_error';
  const details = (
    inner['details'] && typeof inner['details'] === 'object' ? inner['details'] : {}
  ) as Record<string, unknown>;
  return {
    status: STATUS_BY_TYPE.get(type) ?? null,
    type,
    errorCode: typeof details['error_code'] === 'string' ? details['error_code'] : null,
    message: typeof inner['message'] === 'string' ? inner['message'] : `hosted request errored (${type})`,
    requestId: typeof body['request_id'] === 'string' ? body['request_id'] : requestId,
    headers: {},
    transport: null,
  };
}
