/**
 * The error table against the installed SDK's own declarations of `error.details.error_code`:
 * @anthropic-ai/sdk declares each code as an error class (`readonly errorCode: '<code>'`) extending
 * the class of its status, in `resources/shared.d.ts` (every API) and
 * `resources/messages/messages.d.ts` (the Messages API). A new SDK that declares a code the table
 * does not know fails here, so the table is updated with it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ApiFailure } from '../../../src/errors/api-failure.js';
import { classify, ruleFor } from '../../../src/errors/classify.js';
import { RULES_BY_ERROR_CODE } from '../../../src/errors/error-table.js';

// The package's main entry sits at its root (index.js); its exports map hides package.json.
const SDK_ROOT = dirname(createRequire(import.meta.url).resolve('@anthropic-ai/sdk'));
const DECLARATIONS = ['resources/shared.d.ts', 'resources/messages/messages.d.ts'];

/** The SDK's status classes (core/error.d.ts), with the status and the documented body type. */
const BASES: Readonly<Record<string, { status: number; type: string }>> = {
  BadRequestError: { status: 400, type: 'invalid_request_error' },
  PaymentRequiredError: { status: 402, type: 'billing_error' },
  PermissionDeniedError: { status: 403, type: 'permission_error' },
  NotFoundError: { status: 404, type: 'not_found_error' },
  ContentTooLargeError: { status: 413, type: 'request_too_large' },
  RateLimitError: { status: 429, type: 'rate_limit_error' },
  ErrorsRateLimitError: { status: 429, type: 'rate_limit_error' },
  ServiceUnavailableError: { status: 503, type: 'api_error' },
  OverloadedError: { status: 529, type: 'overloaded_error' },
};

/** Every `class X extends Base { readonly errorCode: 'code'; ... }` the declarations hold. */
const SDK_CODES = DECLARATIONS.flatMap((file) => {
  const text = readFileSync(join(SDK_ROOT, file), 'utf8');
  const found: Array<{ code: string; base: string; file: string }> = [];
  for (const m of text.matchAll(/class (\w+) extends (\w+) \{\s*readonly errorCode: '([a-z0-9_]+)'/g)) {
    found.push({ code: m[3]!, base: m[2]!, file });
  }
  return found;
});

function failure(status: number, type: string, errorCode: string): ApiFailure {
  return { status, type, errorCode, message: 'm', requestId: 'req_1', headers: {}, transport: null };
}

describe('every error code the installed SDK declares is in the table', () => {
  it('finds the catalogue (the SDK still declares it this way)', () => {
    expect(SDK_CODES.length).toBeGreaterThanOrEqual(30);
    expect(SDK_CODES.map((c) => c.code)).toEqual(
      expect.arrayContaining([
        'organization_on_hold',
        'cmek_key_disabled',
        'linked_organization_billing_unavailable',
        'linked_organization_spend_limit_reached',
        'contract_spend_limit_reached',
        'enforced_spend_limit_reached',
        'ramp_limit_exceeded',
        'cmek_context_unavailable',
        'cmek_key_unreachable',
      ]),
    );
  });

  it.each(SDK_CODES.map((c) => [c.code, c.base, c.file] as const))(
    '%s (%s, %s) has a rule, and the rule decides over its type',
    (code, base) => {
      expect(Object.hasOwn(BASES, base), `a new SDK status class ${base}: add it to BASES`).toBe(true);
      expect(Object.hasOwn(RULES_BY_ERROR_CODE, code), `add ${code} to RULES_BY_ERROR_CODE`).toBe(true);
      const { status, type } = BASES[base]!;
      expect(ruleFor(failure(status, type, code)).rule).toBe(RULES_BY_ERROR_CODE[code]);
    },
  );
});

describe('the codes by what they mean for the batch', () => {
  const ctx = { retriesSoFar: 0, backoff: { baseDelayMs: 1_000, maxDelayMs: 60_000 }, random: () => 0.5 };
  it.each<[string, number, string, 'retry' | 'dead-letter', string, string | null]>([
    ['organization_on_hold', 400, 'invalid_request_error', 'dead-letter', 'key', 'org_hold'],
    ['cmek_key_disabled', 400, 'invalid_request_error', 'dead-letter', 'key', 'encryption'],
    ['workspace_human_review_disabled', 400, 'invalid_request_error', 'dead-letter', 'key', 'account'],
    ['image_dimensions_too_large', 400, 'invalid_request_error', 'dead-letter', 'request', null],
    ['linked_organization_billing_unavailable', 402, 'billing_error', 'dead-letter', 'key', 'billing'],
    ['linked_organization_spend_limit_reached', 402, 'billing_error', 'dead-letter', 'key', 'spend_cap'],
    ['contract_spend_limit_reached', 429, 'rate_limit_error', 'dead-letter', 'key', 'spend_cap'],
    ['enforced_spend_limit_reached', 429, 'rate_limit_error', 'dead-letter', 'key', 'spend_cap'],
    ['ramp_limit_exceeded', 429, 'rate_limit_error', 'retry', 'request', null],
    ['cmek_context_unavailable', 503, 'api_error', 'retry', 'request', null],
    ['cmek_key_unreachable', 503, 'api_error', 'retry', 'request', null],
    ['thread_not_found', 404, 'not_found_error', 'dead-letter', 'request', null],
    ['compaction_unavailable', 529, 'overloaded_error', 'retry', 'request', null],
  ])('%s (%i %s) → %s, %s-wide, condition %s', (code, status, type, action, scope, condition) => {
    const verdict = classify(failure(status, type, code), ctx);
    expect(verdict).toMatchObject({ action, type });
    expect(verdict.rule).toMatchObject({ scope, condition });
  });

  it('an unknown code falls back to the type, and the message is not matched', () => {
    const rule = ruleFor({
      ...failure(400, 'invalid_request_error', 'some_future_code'),
      message: 'Your credit balance is too low',
    }).rule;
    expect(rule).toMatchObject({ scope: 'request', condition: null });
  });
});
