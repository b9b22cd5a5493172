/**
 * The one table that decides what the runner does with a failed call. Looked up in this order
 * (see `ruleFor` in classify.ts): the body's `error.details.error_code`, then, for answers that
 * carry no code, the message (reality sends shapes the documented table does not list: an empty
 * credit balance as a 400 invalid_request_error), then the body's `.type`, then the status alone
 * (a bare 413 from the edge, an HTML 502 from a proxy). Sources: ../shared/docs/anthropic-api.md,
 * "Errors" and "What the live API has been seen to send".
 */

/** Whether trying again can succeed. */
type Disposition = 'terminal' | 'retryable';

/**
 * How far the cause reaches: this request only, every request of the API key (the key-wide
 * breaker pauses the queue), or every request of one model (the model breaker).
 */
type Scope = 'request' | 'key' | 'model';

/**
 * What is wrong beyond one request, in the runner's words, whatever shape the API gave it: an
 * empty balance is `billing` whether it came as a 402/403 billing_error or as a 400
 * invalid_request_error saying the credit balance is too low.
 */
export type Condition =
  'billing' | 'auth' | 'spend_cap' | 'model' | 'org_hold' | 'account' | 'encryption' | 'storm';

export interface ErrorRule {
  disposition: Disposition;
  scope: Scope;
  /** The runner-level condition, for key- and model-wide rules; null for a request's own fault. */
  condition: Condition | null;
  /** What an operator should do, shown by `status`, `dlq list` and the dashboard. */
  fix: string;
  /**
   * The answer says the model class is over its rate: every worker holds the class for the
   * `retry-after` (the shared budget's hold), not only this request.
   */
  holdsClass?: true;
  /**
   * The answer says too many requests of the key are in flight at once: the cure is fewer in
   * flight, not fewer per minute, so the class is not held (the in-flight cap is what to lower).
   */
  concurrencyLimit?: true;
}

/** What each condition means, as `status` and the dashboard say it. */
export const CONDITION_SUMMARY: Readonly<Record<Condition, string>> = {
  billing: 'credits exhausted',
  auth: 'the API key was refused',
  spend_cap: 'a spend limit is reached',
  model: 'a model is unavailable to this key',
  org_hold: 'the organization is on hold',
  account: 'the account or workspace does not allow these requests',
  encryption: "the workspace's encryption key is unavailable",
  storm: 'a failure storm: many requests in a row failed the same way',
};

/**
 * The API error type an operator may name for a condition: `dlq retry --type billing_error`
 * selects the billing condition whatever type the API sent it as.
 */
export const CONDITION_TYPE: Readonly<Partial<Record<Condition, string>>> = {
  billing: 'billing_error',
  auth: 'authentication_error',
};

const retryable = (fix: string): ErrorRule => ({
  disposition: 'retryable',
  scope: 'request',
  condition: null,
  fix,
});

/**
 * An empty object with no prototype, for a table's entries: a lookup of `constructor` or
 * `toString` finds nothing. (Typed, where Object.create's `any` would hide the entries' types.)
 */
function nullProto(): object {
  return Object.create(null) as object;
}

const BILLING_RULE: ErrorRule = {
  disposition: 'terminal',
  scope: 'key',
  condition: 'billing',
  fix: 'Top up credits or fix the payment method in the Console, then run `claude-batch dlq retry --type billing_error`.',
};

/** Rules by body `error.type`. A null-prototype object: `constructor` or `toString` finds nothing. */
export const RULES_BY_TYPE: Readonly<Record<string, ErrorRule>> = Object.assign(nullProto(), {
  invalid_request_error: {
    disposition: 'terminal',
    scope: 'request',
    condition: null,
    fix: 'Fix the request (its params were rejected as sent; the message names the problem), then resubmit or `dlq retry --id`.',
  },
  authentication_error: {
    disposition: 'terminal',
    scope: 'key',
    condition: 'auth',
    fix: 'Set a valid ANTHROPIC_API_KEY, restart the workers, then run `claude-batch dlq retry --type authentication_error`.',
  },
  billing_error: BILLING_RULE,
  permission_error: {
    disposition: 'terminal',
    scope: 'model',
    condition: 'model',
    fix: 'The key may not use this model or resource: use another model (`dlq retry --model ID`) or a key with access.',
  },
  not_found_error: {
    disposition: 'terminal',
    scope: 'model',
    condition: 'model',
    fix: 'The model id is mistyped or retired: run `claude-batch dlq retry --type not_found_error --model <valid id>`.',
  },
  request_too_large: {
    disposition: 'terminal',
    scope: 'request',
    condition: null,
    fix: 'The request body is over the API limit (32 MB): send less (shorter content, fewer images).',
  },
  rate_limit_error: {
    ...retryable('None needed: retried after retry-after. If it persists, lower --rpm/--itpm/--otpm.'),
    holdsClass: true,
  },
  api_error: retryable('None needed: a server fault, retried with backoff.'),
  overloaded_error: retryable('None needed: the API is overloaded for everyone; retried with backoff.'),
  timeout_error: retryable('None needed: retried. If it persists, raise the request timeout.'),
  conflict_error: retryable('None needed: retried.'),
  connection_error: retryable(
    'None needed: retried. If it persists, check the network and ANTHROPIC_BASE_URL.',
  ),
} satisfies Record<string, ErrorRule>);

/** The spend cap: a limit that retrying cannot cure, for every request of the key. */
const SPEND_LIMIT_RULE: ErrorRule = {
  disposition: 'terminal',
  scope: 'key',
  condition: 'spend_cap',
  fix: "A spend limit is reached: raise it in the Console (or the linked organization's), then run `claude-batch dlq retry --type spend_cap`.",
};

const keyWide = (condition: Condition, fix: string): ErrorRule => ({
  disposition: 'terminal',
  scope: 'key',
  condition,
  fix,
});
const requestFault = (fix: string): ErrorRule => ({
  disposition: 'terminal',
  scope: 'request',
  condition: null,
  fix,
});
const ACCOUNT_FIX =
  'Use a key of an organization and workspace that allow these requests (the message says what is missing), restart the workers, then run `claude-batch dlq retry --type account`.';
const MESSAGES_FIX =
  'Fix the request (the message and `error.details` name the field), then resubmit or `dlq retry --id`.';

/**
 * `error.details.error_code` values, which decide before the type. The catalogue is the SDK's own:
 * @anthropic-ai/sdk 1.14 declares each code with its error class in `resources/shared.d.ts` and,
 * for the Messages API, `resources/messages/messages.d.ts`; `core/error-classes.mjs`
 * (ERROR_CODE_CLASSES) pairs each with its status. test/unit/errors/sdk-error-codes.test.ts fails
 * when the installed SDK declares one this table does not know. The fixes follow the SDK's TSDoc.
 */
export const RULES_BY_ERROR_CODE: Readonly<Record<string, ErrorRule>> = Object.assign(nullProto(), {
  // 400, shared: the key's organization or workspace, for every request.
  organization_on_hold: keyWide(
    'org_hold',
    'Anthropic has put the organization on hold (trust and safety): appeal at the `appeal_url` the error gives, then run `claude-batch dlq retry --type org_hold`.',
  ),
  organization_type_not_supported: keyWide('account', ACCOUNT_FIX),
  parent_organization_required: keyWide('account', ACCOUNT_FIX),
  workspace_human_review_disabled: keyWide('account', ACCOUNT_FIX),
  claude_code_key_creator_not_member: keyWide('account', ACCOUNT_FIX),
  claude_code_version_too_old: keyWide('account', ACCOUNT_FIX),
  cmek_key_disabled: keyWide(
    'encryption',
    "The workspace's customer-managed encryption key is disabled or revoked: re-enable it, then run `claude-batch dlq retry --type encryption`.",
  ),
  cmek_key_network_blocked: keyWide(
    'encryption',
    "The key management service's network controls block the workspace's encryption key: allow Anthropic's access, then run `claude-batch dlq retry --type encryption`.",
  ),
  // 400, shared: how this client encoded the body; the same for every request, but the cure is ours.
  request_body_encoding_invalid: requestFault(
    'The request body did not match its Content-Encoding: check any proxy that rewrites bodies, then `dlq retry`.',
  ),
  request_body_encoding_unsupported: requestFault(
    'The request used a Content-Encoding the API does not accept: check any proxy that compresses bodies, then `dlq retry`.',
  ),
  // 400, Messages: this request's content.
  available_tools_limit_exceeded: requestFault(MESSAGES_FIX),
  compaction_block_ambiguous: requestFault(MESSAGES_FIX),
  compaction_block_misplaced: requestFault(MESSAGES_FIX),
  compaction_content_mismatch: requestFault(MESSAGES_FIX),
  compaction_incomplete_turn: requestFault(MESSAGES_FIX),
  compaction_nothing_to_summarize: requestFault(MESSAGES_FIX),
  compaction_signature_invalid: requestFault(MESSAGES_FIX),
  compaction_too_many_tool_references: requestFault(MESSAGES_FIX),
  compaction_tool_changes_mismatch: requestFault(MESSAGES_FIX),
  image_dimensions_too_large: requestFault(
    'Scale each image named in `error.details.paths` so neither side exceeds `max_side_length_pixels`, then resubmit or `dlq retry --id`.',
  ),
  thread_already_continued: requestFault(MESSAGES_FIX),
  thread_fingerprint_mismatch: requestFault(MESSAGES_FIX),
  thread_unsupported_request: requestFault(MESSAGES_FIX),
  tool_name_conflict: requestFault(MESSAGES_FIX),
  tool_reference_unresolved: requestFault(MESSAGES_FIX),
  // "Wait for it to complete": another request holds the thread; trying later can succeed.
  thread_continue_in_flight: retryable('None needed: retried once the other request has finished.'),
  // 402, shared: the linked organization's billing.
  linked_organization_billing_unavailable: keyWide(
    'billing',
    "Anthropic cannot bill the organization linked to the key's user profile: fix that organization's billing, then run `claude-batch dlq retry --type billing_error`.",
  ),
  linked_organization_spend_limit_reached: SPEND_LIMIT_RULE,
  // 403, shared.
  sandbox_egress_restricted: keyWide(
    'account',
    'The runner is inside a sandbox whose network may not make these requests: run it outside, or with unrestricted egress, then `claude-batch dlq retry --type account`.',
  ),
  // 404, Messages: a thread of this request, not a model.
  thread_not_found: requestFault(MESSAGES_FIX),
  // 413, shared.
  request_body_too_large_after_decoding: requestFault(
    'The request body is over the API limit once decoded: send less (shorter content, fewer images).',
  ),
  // 429, shared: spend limits no retry cures; a ramp limit that waiting does.
  contract_spend_limit_reached: SPEND_LIMIT_RULE,
  enforced_spend_limit_reached: SPEND_LIMIT_RULE,
  ramp_limit_exceeded: {
    ...retryable(
      'None needed: usage grew faster than the ramp limit allows; retried after retry-after. Ramp up more gently (lower --concurrency or the budget) if it persists.',
    ),
    holdsClass: true,
  },
  // 503, shared: the encryption context for a moment; retried.
  cmek_context_unavailable: retryable(
    "None needed: the workspace's encryption settings were unreadable; retried.",
  ),
  cmek_key_unreachable: retryable(
    "None needed: retried. If it persists, check that the workspace's encryption key is available in the key management service.",
  ),
  // 529, Messages.
  compaction_unavailable: retryable(
    'None needed: compaction is overloaded for everyone; retried with backoff.',
  ),
} satisfies Record<string, ErrorRule>);

/**
 * A failure storm: distinct requests of one key failing in a row with the same terminal,
 * request-scoped error (status, type and masked message alike; see failure-signature.ts). The
 * cause is then rarely the requests, whatever the API called it, so the key-wide breaker pauses.
 */
export const STORM_RULE: ErrorRule = {
  disposition: 'terminal',
  scope: 'key',
  condition: 'storm',
  fix: 'If the requests really are bad, run `claude-batch resume` to go on; otherwise fix the cause the message names, then run `claude-batch dlq retry --type storm`.',
};

/**
 * A rule chosen by the message of an answer that carries no `error_code`, for shapes the live API
 * sends under a type that would mislead. `pattern` is tested against the message folded by
 * {@link foldMessage} (lower case, punctuation and runs of space as one space), so case,
 * punctuation and small wording drift do not defeat it.
 */
export interface MessageRule {
  /** The statuses it applies to. */
  statuses: readonly number[];
  pattern: RegExp;
  rule: ErrorRule;
  /** Where the shape was seen. */
  source: string;
}

export const RULES_BY_MESSAGE: readonly MessageRule[] = [
  {
    // "Number of concurrent connections has exceeded your rate limit. Please try again later or
    // contact sales..." (a 429 rate_limit_error): fewer in flight cures it, not fewer per minute.
    statuses: [429],
    pattern: /\bconcurrent (connections|requests)\b.*\b(exceeded|limit)\b|\btoo many concurrent\b/,
    rule: {
      disposition: 'retryable',
      scope: 'request',
      condition: null,
      fix: 'None needed: retried after retry-after. If it persists, lower --concurrency (requests in flight).',
      concurrencyLimit: true,
    },
    source: 'anthropic-api.md, "What the live API has been seen to send": concurrency limits as a 429',
  },
  {
    // "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to
    // upgrade or purchase credits." sent as 400 invalid_request_error (and seen as 402/403).
    statuses: [400, 402, 403],
    pattern:
      /\bcredit balance (is )?(too low|insufficient|exhausted|empty|depleted|zero|negative)\b|\b(insufficient|not enough|no|out of) (remaining )?credits?\b|\bpurchase credits\b/,
    rule: BILLING_RULE,
    source: 'anthropic-api.md, "What the live API has been seen to send": credits exhausted as a 400',
  },
];

/** Lower case, every run of non-alphanumerics as one space: what message patterns are tested on. */
export function foldMessage(message: string): string {
  return message
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/**
 * The API type a typeless answer is reported as, by status; its rule is that type's rule. A
 * typeless 403 is most likely a proxy's refusal, not a billing problem: treated as permission.
 */
export const TYPE_BY_STATUS: Readonly<Record<number, string>> = Object.assign(nullProto(), {
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
  // 502 and 503 from a proxy or the edge: a server fault, retried (the SDK's ServiceUnavailableError).
  502: 'api_error',
  503: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
} satisfies Record<number, string>);

/** Unknown types and statuses: a server-side status may pass, a client-side one will not. */
export function fallbackRule(status: number | null): ErrorRule {
  if (status === null || status >= 500) return RULES_BY_TYPE['api_error']!;
  return {
    disposition: 'terminal',
    scope: 'request',
    condition: null,
    fix: `Unexpected HTTP ${status}: check ANTHROPIC_BASE_URL and any proxy in between.`,
  };
}

/** Own-property lookup: a body type such as `constructor` or `__proto__` finds nothing. */
export function lookup<T>(table: Readonly<Record<string, T>>, key: string | number): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

const CONDITION_FIX: Readonly<Record<Condition, string>> = {
  billing: BILLING_RULE.fix,
  auth: RULES_BY_TYPE['authentication_error']!.fix,
  spend_cap: SPEND_LIMIT_RULE.fix,
  model: 'Use a model this key may use (`claude-batch dlq retry --model ID`), or a key with access.',
  org_hold: RULES_BY_ERROR_CODE['organization_on_hold']!.fix,
  account: ACCOUNT_FIX,
  encryption: RULES_BY_ERROR_CODE['cmek_key_disabled']!.fix,
  storm: STORM_RULE.fix,
};

/**
 * The one fix text for what an operator sees: the condition's when there is one, else the error
 * type's, else a general one.
 */
export function fixFor(type: string, condition?: Condition | null): string {
  const byType = lookup(RULES_BY_TYPE, type);
  // The type's own text is the more specific one when it speaks of the same condition.
  if (condition && byType?.condition !== condition) return CONDITION_FIX[condition];
  return (
    byType?.fix ?? `Not in the error table: see the messages with \`claude-batch dlq list --type ${type}\`.`
  );
}

export function isCondition(value: unknown): value is Condition {
  return typeof value === 'string' && Object.hasOwn(CONDITION_SUMMARY, value);
}
