/**
 * Emulator options, declared once: each field's schema carries its type, bounds, default and doc, and
 * the TypeScript types are derived from it (`EmulatorOptions` is what a caller may pass, z.input;
 * `ResolvedOptions` what the emulator runs with, z.output). The control API and the CLI reuse the
 * per-section schemas, so every surface validates alike, with errors that name the field and value
 * (see option-schema.ts).
 */
import { z } from 'zod';
import { BILLING_ERROR_STATUSES } from './api-error.js';
import type { CacheMinimumRules } from './cache-minimums.js';
import { faultPlanSchema } from './fault-plan.js';
import {
  boolean,
  finite,
  integer,
  nonEmptyString,
  oneOf,
  parseOption,
  strictObject,
  stringList,
} from './option-schema.js';

/**
 * Current model ids, plus a few older ones that tests and examples still name. (SDK 1.x prints a
 * deprecation warning for claude-sonnet-4-5 and claude-opus-4-5; claude-haiku-4-5 draws none.)
 */
export const DEFAULT_MODELS: readonly string[] = [
  'claude-opus-4-6',
  'claude-sonnet-4-6',
  'claude-haiku-4-5',
  'claude-opus-4-5',
  'claude-sonnet-4-5',
  'claude-opus-4-1',
];
const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_OUTPUT_TOKENS = 64_000;
const DEFAULT_REQUEST_LOG_SIZE = 10_000;
/** The hosted API's documented limits (anthropic-api.md, "Message Batches API"). */
const DEFAULT_BATCHES_MAX_REQUESTS = 100_000;
/**
 * 256 MB read as decimal megabytes (256,000,000 bytes), the stricter of the two readings: a client
 * that splits under it is accepted by an API that meant 256 MiB as well.
 */
const DEFAULT_BATCHES_MAX_BYTES = 256_000_000;
/** "Requests unprocessed after 24 h expire" (anthropic-api.md). */
const DEFAULT_BATCHES_EXPIRY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_BATCHES_START_DELAY_MS = 1_000;
const DEFAULT_BATCHES_PROCESSING_MS = 1;

const OTPM_MODES = ['reserve', 'produced'] as const;
export type OtpmMode = (typeof OTPM_MODES)[number];

/** One set of rate limits. Each limit is optional; an absent one is not enforced. */
export const rateLimitsSchema = strictObject({
  /** Requests per minute (bucket capacity; refills at rpm/60 per second). Default: unlimited. */
  rpm: integer(1).optional(),
  /** Input tokens per minute; counts input_tokens + cache_creation_input_tokens, not cache reads. Default: unlimited. */
  itpm: integer(1).optional(),
  /** Output tokens per minute. Default: unlimited. */
  otpm: integer(1).optional(),
  /**
   * How output tokens are charged. `reserve`: max_tokens is taken at the start (the request needs that
   * much, capped at the bucket's capacity) and the unused part given back at the end. `produced`: the
   * request needs a positive level to start and is charged its actual output tokens when it ends.
   * Default `produced` (the current API behaviour).
   */
  otpmMode: oneOf(OTPM_MODES, '"reserve" or "produced"').optional(),
});
type RateLimits = z.input<typeof rateLimitsSchema>;

const resolvedRateLimitsSchema = rateLimitsSchema.transform((l) => ({
  rpm: l.rpm ?? null,
  itpm: l.itpm ?? null,
  otpm: l.otpm ?? null,
  otpmMode: l.otpmMode ?? 'produced',
}));
export type ResolvedRateLimits = z.output<typeof resolvedRateLimitsSchema>;

/** Limits per model id; models not listed get `default` (or none). Every model has its own buckets. */
const perModelLimitsSchema = strictObject({
  byModel: z.record(z.string(), resolvedRateLimitsSchema, { error: 'an object' }),
  default: resolvedRateLimitsSchema.optional(),
});
type PerModelLimits = z.input<typeof perModelLimitsSchema>;

/** One set for every model (each model still gets its own buckets, as model classes do), or per model. */
const limitsSchema = z
  .union([perModelLimitsSchema, resolvedRateLimitsSchema], {
    error: 'an object of limits {rpm, itpm, otpm, otpmMode} or {byModel, default}',
  })
  .nullish()
  .transform((v) => {
    if (v === undefined || v === null) return { byModel: new Map(), fallback: null };
    if ('byModel' in v) {
      return { byModel: new Map(Object.entries(v.byModel)), fallback: v.default ?? null };
    }
    return { byModel: new Map(), fallback: v };
  });
export type LimitsOption = RateLimits | PerModelLimits;

export interface ResolvedLimits {
  byModel: ReadonlyMap<string, ResolvedRateLimits>;
  fallback: ResolvedRateLimits | null;
}

export const latencySchema = strictObject({
  /** Added to every answered `/v1/messages` request that got past validation, in ms. Default 0. */
  fixedMs: finite(0, 3_600_000).default(0),
  /** Up to this many ms more, drawn deterministically from (seed, prompt, attempt). Default 0. */
  jitterMs: finite(0, 3_600_000).default(0),
  /** Added per output token of a successful reply, in ms. Default 0. */
  perOutputTokenMs: finite(0, 60_000).default(0),
}).default({ fixedMs: 0, jitterMs: 0, perOutputTokenMs: 0 });
export type LatencyOptions = z.input<typeof latencySchema>;
export type ResolvedLatency = z.output<typeof latencySchema>;

/**
 * A prepaid balance in abstract credits. A request is refused (see `billingErrorStatus` for the
 * shape) while the balance is <= 0; a successful `/v1/messages` request then costs
 * perRequest + perInputToken * (input + cache creation + cache read tokens) + perOutputToken * output tokens,
 * which may take the balance below zero (the API bills after the fact too).
 */
export const creditsSchema = strictObject({
  /** Starting balance, in credits. */
  balance: finite(0),
  /** Credits per successful request. Default 1. */
  perRequest: finite(0).default(1),
  /** Credits per input token (all kinds). Default 0. */
  perInputToken: finite(0).default(0),
  /** Credits per output token. Default 0. */
  perOutputToken: finite(0).default(0),
});
export type CreditsOptions = z.input<typeof creditsSchema>;
export type ResolvedCredits = z.output<typeof creditsSchema>;

/** Models a key may not use (403 permission_error): one list for every key, or a list per key where `*` means every key. */
const forbiddenModelsSchema = z
  .union([stringList(), z.record(z.string(), stringList(), { error: 'an object' })], {
    error: 'an array of model ids or an object {key: model ids}',
  })
  .optional()
  .transform((value): ResolvedForbidden => {
    if (value === undefined) return { everyKey: new Set(), byKey: new Map() };
    if (Array.isArray(value)) return { everyKey: new Set(value), byKey: new Map() };
    let everyKey = new Set<string>();
    const byKey = new Map<string, Set<string>>();
    for (const [key, list] of Object.entries(value)) {
      if (key === '*') everyKey = new Set(list);
      else byKey.set(key, new Set(list));
    }
    return { everyKey, byKey };
  });

interface ResolvedForbidden {
  everyKey: ReadonlySet<string>;
  byKey: ReadonlyMap<string, ReadonlySet<string>>;
}

export const maxConcurrentSchema = integer(1)
  .nullish()
  .transform((n) => n ?? null);

/**
 * The shortest prefix a breakpoint caches, in the emulator's tokens: one number for every model, or
 * `{glob: tokens}` tried in order (`*` any run) before the default table (cache-minimums.ts).
 */
const minCacheableTokensSchema = z
  .union([integer(0), z.record(nonEmptyString(), integer(0), { error: 'an object' })], {
    error: 'an integer >= 0 or an object {model glob: integer >= 0}',
  })
  .optional()
  .transform((value): CacheMinimumRules => {
    if (value === undefined) return [];
    if (typeof value === 'number') return [['*', value]];
    return Object.entries(value);
  });

const clockSchema = z.custom<() => number>((v) => typeof v === 'function', {
  error: 'a function returning ms since the epoch',
});

export const emulatorOptionsSchema = strictObject({
  /** Interface to listen on. Default `127.0.0.1`. */
  host: nonEmptyString().default('127.0.0.1'),
  /** TCP port; 0 picks a free one (read it from `handle.url`). Default 0. */
  port: integer(0, 65_535).default(0),
  /** Keys accepted (via `x-api-key` or `Authorization: Bearer`). Empty: any non-empty key passes. Default []. */
  apiKeys: stringList().readonly().default([]),
  /** Answer 400 invalid_request_error when the `anthropic-version` header is missing. Default true. */
  anthropicVersionRequired: boolean().default(true),
  /**
   * How an empty balance (and an injected billing_error) is answered: 400 invalid_request_error
   * "Your credit balance is too low..." as the live API has been seen to send it, or 402 / 403
   * billing_error as documented (newest docs / older API). Default 400.
   */
  billingErrorStatus: oneOf(BILLING_ERROR_STATUSES, '400, 402 or 403').default(400),
  /** Model ids the emulator knows; others get 404 not_found_error. Default {@link DEFAULT_MODELS}. */
  models: stringList()
    .readonly()
    .refine((m) => m.length > 0, { error: 'at least one model id' })
    .transform((m): readonly string[] => [...new Set(m)])
    .default(DEFAULT_MODELS),
  /** See {@link forbiddenModelsSchema}. Default: none. */
  forbiddenModels: forbiddenModelsSchema,
  /** Rate limits; see {@link LimitsOption}. Default: none. */
  limits: limitsSchema,
  /** Largest request body accepted, in bytes; larger gets 413 request_too_large. Default 32 MiB. */
  maxBodyBytes: integer(1).default(DEFAULT_MAX_BODY_BYTES),
  /** Largest max_tokens accepted, in tokens; larger gets 400 invalid_request_error. Default 64,000. */
  maxOutputTokens: integer(1).default(DEFAULT_MAX_OUTPUT_TOKENS),
  /**
   * Requests in flight at once (`/v1/messages`, from admission until the response ends, streams
   * included); one more gets 429 rate_limit_error "Number of concurrent connections has exceeded your
   * rate limit..." with retry-after, as the live API sends. null: no limit. Changeable at run time.
   * Default: null.
   */
  maxConcurrent: maxConcurrentSchema,
  /** Injected faults; changeable at run time. Default: none. */
  faults: faultPlanSchema.default({}),
  /** Artificial latency; changeable at run time. Default: none. */
  latency: latencySchema,
  /** Prepaid credits. Default: unlimited. */
  credits: creditsSchema.nullish().transform((c) => c ?? null),
  /** Start with the spend cap reached (every request 429 enforced_spend_limit_reached). Default false. */
  spendCapReached: boolean().default(false),
  /**
   * Minimum cacheable prefix per model, in tokens: a breakpoint under it is ignored (no read, no write),
   * as the API does. A number for every model, or `{"claude-haiku-*": 100}` (globs, first match wins)
   * ahead of the default table: 1,024; 2,048 for Sonnet 4.6 and the Haiku 3 family; 4,096 for
   * Haiku 4.5 and Opus 4.5/4.6. Tests with short prompts set it low.
   */
  minCacheableTokens: minCacheableTokensSchema,
  /** Seed for replies, jitter and fault draws; an integer. Default 0. */
  seed: integer(Number.MIN_SAFE_INTEGER).default(0),
  /** Entries kept in the request log ring; 0 turns the log off. Default 10,000. */
  requestLogSize: integer(0, 10_000_000).default(DEFAULT_REQUEST_LOG_SIZE),
  /**
   * Hosted Message Batches (`/v1/messages/batches`, hosted-batches.ts): how long after its creation a
   * batch starts processing, in ms. Default 1,000.
   */
  batchesStartDelayMs: finite(0, 7 * 24 * 3_600_000).default(DEFAULT_BATCHES_START_DELAY_MS),
  /**
   * Processing time of each request of a hosted batch, in ms: a batch processes its requests one
   * after another, batches side by side. 0: all at once when the batch starts. Default 1
   * (10,000 requests in 10 s after the start delay).
   */
  batchesProcessingMs: finite(0, 3_600_000).default(DEFAULT_BATCHES_PROCESSING_MS),
  /** Most requests in one hosted batch; more get 400 invalid_request_error. Default 100,000 (the API's). */
  batchesMaxRequests: integer(1).default(DEFAULT_BATCHES_MAX_REQUESTS),
  /**
   * Largest `POST /v1/messages/batches` body, in bytes; larger gets 413 request_too_large (the API's
   * answer to a body over its size limit). Default 256,000,000 (the API's 256 MB, read as decimal).
   */
  batchesMaxBytes: integer(1).default(DEFAULT_BATCHES_MAX_BYTES),
  /**
   * Most requests waiting (not yet processed) across hosted batches in progress; a create that would
   * take the total over it gets 429 rate_limit_error with retry-after. null: no limit. Default null.
   */
  batchesQueueLimit: integer(1)
    .nullish()
    .transform((n) => n ?? null),
  /** A hosted batch's requests still unprocessed this long after its creation end `expired`. Default 24 h. */
  batchesExpiryMs: finite(1).default(DEFAULT_BATCHES_EXPIRY_MS),
  /**
   * How long the answer to a hosted batch's create is held back, in ms. The batch exists from the
   * moment the create arrives (listed, counted in `stats`, processing on its own clock); only the
   * reply waits, so a client killed or timed out meanwhile leaves a batch it never learned the id of
   * (the crash a runner must adopt after). Default 0.
   */
  batchesCreateReplyDelayMs: finite(0, 3_600_000).default(0),
  /**
   * A results download pauses after this many lines (each download, once) for
   * `batchesResultsPauseMs`, the lines before it already sent: a client killed meanwhile has read part
   * of the file. null: no pause. Default null.
   */
  batchesResultsPauseAfterLines: integer(0)
    .nullish()
    .transform((n) => n ?? null),
  /** How long that pause lasts, in ms; 0: none. Default 0. */
  batchesResultsPauseMs: finite(0, 3_600_000).default(0),
  /** Time source in ms since the epoch, for buckets, cache TTLs and log times (inject for tests). Default `Date.now`. */
  clock: clockSchema.default(() => Date.now),
});

export type EmulatorOptions = z.input<typeof emulatorOptionsSchema>;
export type ResolvedOptions = z.output<typeof emulatorOptionsSchema>;

/** Validates every option at once and fills in defaults; throws {@link EmulatorOptionsError}. */
export function resolveEmulatorOptions(options: EmulatorOptions = {}): ResolvedOptions {
  return parseOption(emulatorOptionsSchema, options, '');
}

/** Validates a {@link LimitsOption} (or undefined/null for none). */
export function validateLimits(value: unknown, path = 'limits'): ResolvedLimits {
  return parseOption(limitsSchema, value, path);
}

export function validateLatency(value: unknown, path = 'latency'): ResolvedLatency {
  return parseOption(latencySchema, value, path);
}

export function validateCredits(value: unknown, path = 'credits'): ResolvedCredits {
  return parseOption(creditsSchema, value, path);
}
