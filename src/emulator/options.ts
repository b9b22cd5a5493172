/**
 * Emulator options: their types (with defaults and units), and the one validation pass that runs when
 * the emulator starts. The control API reuses the per-section validators.
 */
import type { BillingErrorStatus } from './api-error.js';
import { validateFaultPlan, type FaultPlan } from './fault-plan.js';
import {
  EmulatorOptionsError,
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkObject,
  checkString,
  checkStringList,
  isPlainObject,
} from './option-error.js';

export type OtpmMode = 'reserve' | 'produced';

/** One set of rate limits. Each limit is optional; an absent one is not enforced. */
export interface RateLimits {
  /** Requests per minute (bucket capacity; refills at rpm/60 per second). Default: unlimited. */
  rpm?: number;
  /** Input tokens per minute; counts input_tokens + cache_creation_input_tokens, not cache reads. Default: unlimited. */
  itpm?: number;
  /** Output tokens per minute. Default: unlimited. */
  otpm?: number;
  /**
   * How output tokens are charged. `reserve`: max_tokens is taken at the start (the request needs that
   * much, capped at the bucket's capacity) and the unused part given back at the end. `produced`: the
   * request needs a positive level to start and is charged its actual output tokens when it ends.
   * Default `produced` (the current API behaviour).
   */
  otpmMode?: OtpmMode;
}

/** Limits per model id; models not listed get `default` (or none). Every model has its own buckets. */
export interface PerModelLimits {
  byModel: Readonly<Record<string, RateLimits>>;
  default?: RateLimits;
}

/** One set for every model (each model still gets its own buckets, as model classes do), or per model. */
export type LimitsOption = RateLimits | PerModelLimits;

export interface LatencyOptions {
  /** Added to every answered `/v1/messages` request that got past validation, in ms. Default 0. */
  fixedMs?: number;
  /** Up to this many ms more, drawn deterministically from (seed, prompt, attempt). Default 0. */
  jitterMs?: number;
  /** Added per output token of a successful reply, in ms. Default 0. */
  perOutputTokenMs?: number;
}

/**
 * A prepaid balance in abstract credits. A request is refused (see `billingErrorStatus` for the
 * shape) while the balance is
 * <= 0; a successful `/v1/messages` request then costs
 * perRequest + perInputToken * (input + cache creation + cache read tokens) + perOutputToken * output tokens,
 * which may take the balance below zero (the API bills after the fact too).
 */
export interface CreditsOptions {
  /** Starting balance, in credits. */
  balance: number;
  /** Credits per successful request. Default 1. */
  perRequest?: number;
  /** Credits per input token (all kinds). Default 0. */
  perInputToken?: number;
  /** Credits per output token. Default 0. */
  perOutputToken?: number;
}

/** Models a key may not use (403 permission_error): one list for every key, or a list per key where `*` means every key. */
export type ForbiddenModels = readonly string[] | Readonly<Record<string, readonly string[]>>;

export interface EmulatorOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 picks a free one (read it from `handle.url`). Default 0. */
  port?: number;
  /** Keys accepted (via `x-api-key` or `Authorization: Bearer`). Empty: any non-empty key passes. Default []. */
  apiKeys?: readonly string[];
  /** Answer 400 invalid_request_error when the `anthropic-version` header is missing. Default true. */
  anthropicVersionRequired?: boolean;
  /**
   * How an empty balance (and an injected billing_error) is answered: 400 invalid_request_error
   * "Your credit balance is too low..." as the live API has been seen to send it, or 402 / 403
   * billing_error as documented (newest docs / older API). Default 400.
   */
  billingErrorStatus?: BillingErrorStatus;
  /** Model ids the emulator knows; others get 404 not_found_error. Default {@link DEFAULT_MODELS}. */
  models?: readonly string[];
  /** See {@link ForbiddenModels}. Default: none. */
  forbiddenModels?: ForbiddenModels;
  /** Rate limits; see {@link LimitsOption}. Default: none. */
  limits?: LimitsOption;
  /** Largest request body accepted, in bytes; larger gets 413 request_too_large. Default 32 MiB. */
  maxBodyBytes?: number;
  /** Largest max_tokens accepted, in tokens; larger gets 400 invalid_request_error. Default 64,000. */
  maxOutputTokens?: number;
  /** Injected faults; changeable at run time. Default: none. */
  faults?: FaultPlan;
  /** Artificial latency; changeable at run time. Default: none. */
  latency?: LatencyOptions;
  /** Prepaid credits. Default: unlimited. */
  credits?: CreditsOptions;
  /** Start with the spend cap reached (every request 429 enforced_spend_limit_reached). Default false. */
  spendCapReached?: boolean;
  /** Seed for replies, jitter and fault draws; an integer. Default 0. */
  seed?: number;
  /** Entries kept in the request log ring; 0 turns the log off. Default 10,000. */
  requestLogSize?: number;
  /** Time source in ms since the epoch, for buckets, cache TTLs and log times (inject for tests). Default `Date.now`. */
  clock?: () => number;
}

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
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_OUTPUT_TOKENS = 64_000;
export const DEFAULT_REQUEST_LOG_SIZE = 10_000;

export interface ResolvedRateLimits {
  rpm: number | null;
  itpm: number | null;
  otpm: number | null;
  otpmMode: OtpmMode;
}

export interface ResolvedLimits {
  byModel: ReadonlyMap<string, ResolvedRateLimits>;
  fallback: ResolvedRateLimits | null;
}

export interface ResolvedForbidden {
  everyKey: ReadonlySet<string>;
  byKey: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface ResolvedLatency {
  fixedMs: number;
  jitterMs: number;
  perOutputTokenMs: number;
}

export interface ResolvedCredits {
  balance: number;
  perRequest: number;
  perInputToken: number;
  perOutputToken: number;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  apiKeys: readonly string[];
  anthropicVersionRequired: boolean;
  billingErrorStatus: BillingErrorStatus;
  models: readonly string[];
  forbidden: ResolvedForbidden;
  limits: ResolvedLimits;
  maxBodyBytes: number;
  maxOutputTokens: number;
  faults: FaultPlan;
  latency: ResolvedLatency;
  credits: ResolvedCredits | null;
  spendCapReached: boolean;
  seed: number;
  requestLogSize: number;
  clock: () => number;
}

const OPTION_KEYS = [
  'host',
  'port',
  'apiKeys',
  'anthropicVersionRequired',
  'billingErrorStatus',
  'models',
  'forbiddenModels',
  'limits',
  'maxBodyBytes',
  'maxOutputTokens',
  'faults',
  'latency',
  'credits',
  'spendCapReached',
  'seed',
  'requestLogSize',
  'clock',
] as const;

/** Validates every option at once and fills in defaults; throws {@link EmulatorOptionsError}. */
export function resolveEmulatorOptions(options: EmulatorOptions = {}): ResolvedOptions {
  const o = checkObject(options, 'options') as EmulatorOptions & Record<string, unknown>;
  checkKnownKeys(o, OPTION_KEYS, '');
  const billing = o.billingErrorStatus ?? 400;
  if (billing !== 400 && billing !== 403 && billing !== 402) {
    throw new EmulatorOptionsError('billingErrorStatus', billing, '400, 402 or 403');
  }
  const models = o.models === undefined ? DEFAULT_MODELS : checkStringList(o.models, 'models');
  if (models.length === 0) throw new EmulatorOptionsError('models', o.models, 'at least one model id');
  if (o.clock !== undefined && typeof o.clock !== 'function') {
    throw new EmulatorOptionsError('clock', o.clock, 'a function returning ms since the epoch');
  }
  return {
    host: o.host === undefined ? '127.0.0.1' : checkString(o.host, 'host'),
    port: o.port === undefined ? 0 : checkInteger(o.port, 'port', 0, 65_535),
    apiKeys: o.apiKeys === undefined ? [] : checkStringList(o.apiKeys, 'apiKeys'),
    anthropicVersionRequired:
      o.anthropicVersionRequired === undefined
        ? true
        : checkBoolean(o.anthropicVersionRequired, 'anthropicVersionRequired'),
    billingErrorStatus: billing,
    models: [...new Set(models)],
    forbidden: validateForbidden(o.forbiddenModels),
    limits: validateLimits(o.limits),
    maxBodyBytes:
      o.maxBodyBytes === undefined ? DEFAULT_MAX_BODY_BYTES : checkInteger(o.maxBodyBytes, 'maxBodyBytes', 1),
    maxOutputTokens:
      o.maxOutputTokens === undefined
        ? DEFAULT_MAX_OUTPUT_TOKENS
        : checkInteger(o.maxOutputTokens, 'maxOutputTokens', 1),
    faults: o.faults === undefined ? {} : validateFaultPlan(o.faults, 'faults'),
    latency: validateLatency(o.latency),
    credits: o.credits === undefined ? null : validateCredits(o.credits),
    spendCapReached:
      o.spendCapReached === undefined ? false : checkBoolean(o.spendCapReached, 'spendCapReached'),
    seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', Number.MIN_SAFE_INTEGER),
    requestLogSize:
      o.requestLogSize === undefined
        ? DEFAULT_REQUEST_LOG_SIZE
        : checkInteger(o.requestLogSize, 'requestLogSize', 0, 10_000_000),
    clock: o.clock ?? Date.now,
  };
}

function validateForbidden(value: unknown): ResolvedForbidden {
  if (value === undefined) return { everyKey: new Set(), byKey: new Map() };
  if (Array.isArray(value)) {
    return { everyKey: new Set(checkStringList(value, 'forbiddenModels')), byKey: new Map() };
  }
  if (!isPlainObject(value)) {
    throw new EmulatorOptionsError(
      'forbiddenModels',
      value,
      'an array of model ids or an object {key: model ids}',
    );
  }
  let everyKey = new Set<string>();
  const byKey = new Map<string, Set<string>>();
  for (const [key, list] of Object.entries(value)) {
    // The key itself never goes into an error message: name the entry by position instead.
    const path = key === '*' ? 'forbiddenModels.*' : `forbiddenModels[key #${byKey.size + 1}]`;
    const models = new Set(checkStringList(list, path));
    if (key === '*') everyKey = models;
    else byKey.set(key, models);
  }
  return { everyKey, byKey };
}

function validateRateLimits(value: unknown, path: string): ResolvedRateLimits {
  const v = checkObject(value, path);
  checkKnownKeys(v, ['rpm', 'itpm', 'otpm', 'otpmMode'], path);
  const mode = v.otpmMode ?? 'produced';
  if (mode !== 'reserve' && mode !== 'produced') {
    throw new EmulatorOptionsError(`${path}.otpmMode`, v.otpmMode, '"reserve" or "produced"');
  }
  return {
    rpm: v.rpm === undefined ? null : checkInteger(v.rpm, `${path}.rpm`, 1),
    itpm: v.itpm === undefined ? null : checkInteger(v.itpm, `${path}.itpm`, 1),
    otpm: v.otpm === undefined ? null : checkInteger(v.otpm, `${path}.otpm`, 1),
    otpmMode: mode,
  };
}

/** Validates a {@link LimitsOption} (or undefined/null for none). */
export function validateLimits(value: unknown, path = 'limits'): ResolvedLimits {
  if (value === undefined || value === null) return { byModel: new Map(), fallback: null };
  const v = checkObject(value, path);
  if ('byModel' in v) {
    checkKnownKeys(v, ['byModel', 'default'], path);
    const byModel = new Map<string, ResolvedRateLimits>();
    for (const [model, limits] of Object.entries(checkObject(v.byModel, `${path}.byModel`))) {
      byModel.set(model, validateRateLimits(limits, `${path}.byModel.${model}`));
    }
    const fallback = v.default === undefined ? null : validateRateLimits(v.default, `${path}.default`);
    return { byModel, fallback };
  }
  return { byModel: new Map(), fallback: validateRateLimits(v, path) };
}

export function validateLatency(value: unknown, path = 'latency'): ResolvedLatency {
  if (value === undefined) return { fixedMs: 0, jitterMs: 0, perOutputTokenMs: 0 };
  const v = checkObject(value, path);
  checkKnownKeys(v, ['fixedMs', 'jitterMs', 'perOutputTokenMs'], path);
  return {
    fixedMs: v.fixedMs === undefined ? 0 : checkNumber(v.fixedMs, `${path}.fixedMs`, 0, 3_600_000),
    jitterMs: v.jitterMs === undefined ? 0 : checkNumber(v.jitterMs, `${path}.jitterMs`, 0, 3_600_000),
    perOutputTokenMs:
      v.perOutputTokenMs === undefined
        ? 0
        : checkNumber(v.perOutputTokenMs, `${path}.perOutputTokenMs`, 0, 60_000),
  };
}

export function validateCredits(value: unknown, path = 'credits'): ResolvedCredits {
  const v = checkObject(value, path);
  checkKnownKeys(v, ['balance', 'perRequest', 'perInputToken', 'perOutputToken'], path);
  return {
    balance: checkNumber(v.balance, `${path}.balance`, 0),
    perRequest: v.perRequest === undefined ? 1 : checkNumber(v.perRequest, `${path}.perRequest`, 0),
    perInputToken:
      v.perInputToken === undefined ? 0 : checkNumber(v.perInputToken, `${path}.perInputToken`, 0),
    perOutputToken:
      v.perOutputToken === undefined ? 0 : checkNumber(v.perOutputToken, `${path}.perOutputToken`, 0),
  };
}
