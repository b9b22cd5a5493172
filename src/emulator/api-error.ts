/**
 * The API's error vocabulary: the `error.type` values, the HTTP status each is sent with, and the one
 * body shape every error has. Bodies are assembled as strings because they are tiny and sent often.
 */

export const API_ERROR_TYPES = [
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'billing_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'api_error',
  'overloaded_error',
  'timeout_error',
  'conflict_error',
] as const;

export type ApiErrorType = (typeof API_ERROR_TYPES)[number];

/** billing_error is left out: its shape is an option (see {@link billingShape}). */
const STATUS: Readonly<Record<Exclude<ApiErrorType, 'billing_error'>, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
  timeout_error: 504,
  conflict_error: 409,
};

export function isApiErrorType(value: unknown): value is ApiErrorType {
  return typeof value === 'string' && (API_ERROR_TYPES as readonly string[]).includes(value);
}

/**
 * The HTTP status of an empty balance's refusal: 400 (what the live API has been seen to send, with
 * type invalid_request_error; many public reports 2025-2026, see anthropic-api.md), or 402 / 403
 * billing_error (the documented shapes, newest and older).
 */
export const BILLING_ERROR_STATUSES = [400, 402, 403] as const;
export type BillingErrorStatus = (typeof BILLING_ERROR_STATUSES)[number];

/** How a refusal for an empty balance goes out: status and body type. */
export function billingShape(status: BillingErrorStatus): { status: number; type: ApiErrorType } {
  return { status, type: status === 400 ? 'invalid_request_error' : 'billing_error' };
}

/** The status and body type an error of `type` is sent with. */
export function wireShape(
  type: ApiErrorType,
  billingErrorStatus: BillingErrorStatus,
): { status: number; type: ApiErrorType } {
  return type === 'billing_error' ? billingShape(billingErrorStatus) : { status: STATUS[type], type };
}

/** The message an injected fault of each type carries, worded like the API's own. */
export const DEFAULT_MESSAGES: Readonly<Record<ApiErrorType, string>> = {
  invalid_request_error: 'Invalid request (emulated fault).',
  authentication_error: 'invalid x-api-key',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  billing_error:
    'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
  not_found_error: 'Not found (emulated fault).',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error:
    "This request would exceed your organization's rate limit (emulated fault). Please try again later.",
  api_error: 'Internal server error',
  overloaded_error: 'Overloaded',
  timeout_error: 'Request timed out (emulated fault).',
  conflict_error: 'Conflict (emulated fault).',
};

/** `{"type":"error","error":{"type":...,"message":...[,"details":...]},"request_id":...}` */
export function errorBody(
  type: ApiErrorType,
  message: string,
  requestId: string,
  details?: Readonly<Record<string, unknown>>,
): string {
  const detailsPart = details === undefined ? '' : `,"details":${JSON.stringify(details)}`;
  return `{"type":"error","error":{"type":"${type}","message":${JSON.stringify(message)}${detailsPart}},"request_id":"${requestId}"}`;
}
