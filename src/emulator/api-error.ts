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
function billingShape(status: BillingErrorStatus): { status: number; type: ApiErrorType } {
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

/**
 * The `error.details.error_code` values an account condition is answered with, each with the status
 * and `error.type` it comes with. The pairing is the SDK's, not memory: @anthropic-ai/sdk 1.14
 * declares each code with its error class in `resources/shared.d.ts` (BadRequestError = 400,
 * PaymentRequiredError = 402, RateLimitError = 429, ServiceUnavailableError = 503) and keys the classes
 * by "status code" in `core/error-classes.js` (ERROR_CODE_CLASSES). The body types follow the API's
 * status/type table (anthropic-api.md); for 503 the SDK declares no type of its own, so `api_error`
 * (the generic server type) is an assumption. Messages paraphrase the SDK's doc comments.
 */
export const ERROR_CODES = {
  organization_on_hold: {
    status: 400,
    type: 'invalid_request_error',
    message: 'Your organization is on hold. Please contact support.',
  },
  cmek_key_disabled: {
    status: 400,
    type: 'invalid_request_error',
    message: "The workspace's customer-managed encryption key is disabled.",
  },
  linked_organization_billing_unavailable: {
    status: 402,
    type: 'billing_error',
    message: 'Anthropic cannot currently bill the organization linked to your user profile.',
  },
  linked_organization_spend_limit_reached: {
    status: 402,
    type: 'billing_error',
    message: 'The organization linked to your user profile has reached its spend limit or lacks credit.',
  },
  contract_spend_limit_reached: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Your organization has reached the spend limit of its contract.',
  },
  enforced_spend_limit_reached: {
    status: 429,
    type: 'rate_limit_error',
    message:
      'You have reached your specified API usage limits. You will regain access when the limit resets or when you raise it.',
  },
  ramp_limit_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    message:
      'This request would exceed a ramp limit, which caps how fast usage can grow. Please try again later.',
  },
  cmek_context_unavailable: {
    status: 503,
    type: 'api_error',
    message: "The workspace's encryption settings could not be read. Please retry in a few minutes.",
  },
  cmek_key_unreachable: {
    status: 503,
    type: 'api_error',
    message: "The workspace's customer-managed encryption key could not be reached. Please retry.",
  },
} as const satisfies Record<string, { status: number; type: ApiErrorType; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as ErrorCode[];

/** Only a ramp limit is waited out (the SDK's doc: "Retry after the time in the retry-after header"). */
export function errorCodeRetries(code: ErrorCode): boolean {
  return code === 'ramp_limit_exceeded';
}

/**
 * Answers that are not the API's: what proxies and the edge send (anthropic-api.md, "Bodies that are
 * not the API's"). `html_5xx` is an HTML error page, `empty_5xx` an empty body, `html_413` the edge's
 * body-too-large page; none has a JSON `error.type`, a request-id or rate-limit headers.
 */
export const EDGE_FAULTS = {
  html_502: { status: 502, html: true },
  html_503: { status: 503, html: true },
  html_504: { status: 504, html: true },
  empty_502: { status: 502, html: false },
  empty_503: { status: 503, html: false },
  empty_504: { status: 504, html: false },
  html_413: { status: 413, html: true },
} as const;
export type EdgeFault = keyof typeof EDGE_FAULTS;
export const EDGE_FAULT_NAMES = Object.keys(EDGE_FAULTS) as EdgeFault[];

const REASONS: Readonly<Record<number, string>> = {
  413: 'Request Entity Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
};

/** A proxy's error page, like the ones nginx and cloud load balancers send. */
export function edgePage(status: number): string {
  const title = `${status} ${REASONS[status] ?? 'Error'}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`;
}
