/**
 * The one table that decides what the runner does with a failed call. The body's `.type` is
 * looked up first; the status only decides when the body carries no type (a bare 413 from the
 * edge, an HTML 502 from a proxy). See docs: anthropic-api.md, "Errors".
 */

/** Whether trying again can succeed. */
export type Disposition = 'terminal' | 'retryable';

/**
 * How far the cause reaches: this request only, every request of the API key (the key-wide
 * breaker pauses the queue), or every request of one model (the model breaker).
 */
export type Scope = 'request' | 'key' | 'model';

export interface ErrorRule {
  disposition: Disposition;
  scope: Scope;
  /** What an operator should do, shown by `status`, `dlq list` and the dashboard. */
  fix: string;
}

const retryable = (fix: string): ErrorRule => ({ disposition: 'retryable', scope: 'request', fix });

/** Rules by body `error.type`. */
export const RULES_BY_TYPE: Readonly<Record<string, ErrorRule>> = {
  invalid_request_error: {
    disposition: 'terminal',
    scope: 'request',
    fix: 'Fix the request (its params were rejected as sent; the message names the problem), then resubmit or `dlq retry --id`.',
  },
  authentication_error: {
    disposition: 'terminal',
    scope: 'key',
    fix: 'Set a valid ANTHROPIC_API_KEY, restart the workers, then run `claude-batch dlq retry --type authentication_error`.',
  },
  billing_error: {
    disposition: 'terminal',
    scope: 'key',
    fix: 'Top up credits or fix the payment method in the Console, then run `claude-batch dlq retry --type billing_error`.',
  },
  permission_error: {
    disposition: 'terminal',
    scope: 'model',
    fix: 'The key may not use this model or resource: use another model (`dlq retry --model ID`) or a key with access.',
  },
  not_found_error: {
    disposition: 'terminal',
    scope: 'model',
    fix: 'The model id is mistyped or retired: run `claude-batch dlq retry --type not_found_error --model <valid id>`.',
  },
  request_too_large: {
    disposition: 'terminal',
    scope: 'request',
    fix: 'The request body is over the API limit (32 MB): send less (shorter content, fewer images).',
  },
  rate_limit_error: retryable(
    'None needed: retried after retry-after. If it persists, lower --rpm/--itpm/--otpm.',
  ),
  api_error: retryable('None needed: a server fault, retried with backoff.'),
  overloaded_error: retryable('None needed: the API is overloaded for everyone; retried with backoff.'),
  timeout_error: retryable('None needed: retried. If it persists, raise the request timeout.'),
  conflict_error: retryable('None needed: retried.'),
  connection_error: retryable(
    'None needed: retried. If it persists, check the network and ANTHROPIC_BASE_URL.',
  ),
};

/** The spend cap: a 429 that retrying cannot cure, for every request of the key. */
export const SPEND_LIMIT_RULE: ErrorRule = {
  disposition: 'terminal',
  scope: 'key',
  fix: 'The workspace spend limit is reached: raise it in the Console, then run `claude-batch dlq retry --type rate_limit_error`.',
};

/** `error.details.error_code` values that override the type's rule. */
export const RULES_BY_ERROR_CODE: Readonly<Record<string, ErrorRule>> = {
  enforced_spend_limit_reached: SPEND_LIMIT_RULE,
};

/** Rules by status, used only when the body has no `.type`. */
export const RULES_BY_STATUS: Readonly<Record<number, ErrorRule>> = {
  400: RULES_BY_TYPE['invalid_request_error']!,
  401: RULES_BY_TYPE['authentication_error']!,
  402: RULES_BY_TYPE['billing_error']!,
  // A typeless 403 is most likely a proxy's refusal, not a billing problem: treat as permission.
  403: RULES_BY_TYPE['permission_error']!,
  404: RULES_BY_TYPE['not_found_error']!,
  408: RULES_BY_TYPE['timeout_error']!,
  409: RULES_BY_TYPE['conflict_error']!,
  413: RULES_BY_TYPE['request_too_large']!,
  429: RULES_BY_TYPE['rate_limit_error']!,
  500: RULES_BY_TYPE['api_error']!,
  504: RULES_BY_TYPE['timeout_error']!,
  529: RULES_BY_TYPE['overloaded_error']!,
};

/** The type reported when a typeless response is classified by status alone. */
export const TYPE_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  409: 'conflict_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** Unknown types and statuses: a server-side status may pass, a client-side one will not. */
export function fallbackRule(status: number | null): ErrorRule {
  if (status === null || status >= 500) return RULES_BY_TYPE['api_error']!;
  return {
    disposition: 'terminal',
    scope: 'request',
    fix: `Unexpected HTTP ${status}: check ANTHROPIC_BASE_URL and any proxy in between.`,
  };
}
