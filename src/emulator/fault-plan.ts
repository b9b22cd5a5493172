/**
 * Injected faults: per-type probabilities and a scripted sequence, changeable while the emulator runs.
 *
 * Reproducibility under concurrency: a probabilistic draw is a hash of (seed, prompt hash, attempt number
 * of that prompt), never the next value of a shared random stream. So the same prompt on its 3rd attempt
 * meets the same fate on every rerun, whatever order concurrent requests happen to arrive in.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import {
  API_ERROR_TYPES,
  EDGE_FAULT_NAMES,
  ERROR_CODE_NAMES,
  ERROR_CODES,
  isApiErrorType,
  type ApiErrorType,
  type EdgeFault,
  type ErrorCode,
} from './api-error.js';
import { finite, integer, oneOf, parseOption, strictObject } from './option-schema.js';

/**
 * Faults below the API: `connection_reset` destroys the socket unanswered, `hang` never answers,
 * `reset_mid_response` sends the status line and headers (200) and part of the body, then resets.
 */
type TransportFault = 'connection_reset' | 'hang' | 'reset_mid_response';
const TRANSPORT_FAULTS: readonly TransportFault[] = ['connection_reset', 'hang', 'reset_mid_response'];

/**
 * Every fault: an API error type (its usual status), an `error.details.error_code` (status and type
 * from ERROR_CODES), a body that is not the API's (EDGE_FAULTS), or a transport fault.
 */
export type FaultType = ApiErrorType | ErrorCode | EdgeFault | TransportFault;
export const FAULT_TYPES: readonly FaultType[] = [
  ...API_ERROR_TYPES,
  ...ERROR_CODE_NAMES,
  ...EDGE_FAULT_NAMES,
  ...TRANSPORT_FAULTS,
];

/** Faults a stream can meet after it started: an `event: error` with that body, or a reset. */
export type MidStreamFault = ApiErrorType | ErrorCode | 'connection_reset';

export function isMidStreamFault(value: unknown): value is MidStreamFault {
  return (
    isApiErrorType(value) ||
    (typeof value === 'string' && Object.hasOwn(ERROR_CODES, value)) ||
    value === 'connection_reset'
  );
}

export function isFaultType(value: unknown): value is FaultType {
  return typeof value === 'string' && (FAULT_TYPES as readonly string[]).includes(value);
}

const STEP_TYPES = ['ok', ...FAULT_TYPES] as const;

/** One step of a scripted sequence. */
const scriptedFaultSchema = strictObject({
  /** The outcome; `ok` lets the request through untouched by fault injection. */
  type: oneOf(STEP_TYPES, `"ok" or one of ${FAULT_TYPES.join(', ')}`),
  /**
   * An `error.details.error_code` to answer with; `type` must then be the code's own type
   * (e.g. `{type: "rate_limit_error", errorCode: "ramp_limit_exceeded"}`). Same as `type: CODE`.
   */
  errorCode: oneOf(ERROR_CODE_NAMES, `one of ${ERROR_CODE_NAMES.join(', ')}`).optional(),
  /** `retry-after` in whole seconds when `type` is `rate_limit_error`. Default: the plan's `retryAfterSeconds`. */
  retryAfterSeconds: integer(1).optional(),
  /**
   * Streamed requests (`stream: true`) only: the stream starts normally and meets the fault after
   * this many text deltas (an `event: error` with the fault's body, or a reset for
   * connection_reset). A request that is not streamed meets the fault as usual.
   */
  afterDeltas: integer(0).optional(),
}).superRefine((step, ctx) => {
  if (step.errorCode !== undefined && step.type !== ERROR_CODES[step.errorCode].type) {
    ctx.addIssue({
      code: 'custom',
      path: ['type'],
      input: step.type,
      message: `"${ERROR_CODES[step.errorCode].type}", the type of error code ${step.errorCode}`,
    });
  }
  if (step.afterDeltas !== undefined && !isMidStreamFault(step.errorCode ?? step.type)) {
    ctx.addIssue({
      code: 'custom',
      path: ['afterDeltas'],
      input: step.afterDeltas,
      message: 'no afterDeltas unless type is an API error type, an error code or connection_reset',
    });
  }
});

const scriptStepSchema = z.union([oneOf(STEP_TYPES, 'a step'), scriptedFaultSchema], {
  error: `"ok", one of ${FAULT_TYPES.join(', ')}, or {type, errorCode, retryAfterSeconds, afterDeltas}`,
});

const FAULT_TYPE_KEY = `a key among ${FAULT_TYPES.join(', ')}`;

export const faultPlanSchema = strictObject({
  /**
   * Probability in [0, 1] that a `/v1/messages` request fails with each type; the sum must not exceed 1.
   * Default: none.
   */
  probabilities: z
    .partialRecord(oneOf(FAULT_TYPES, FAULT_TYPE_KEY), finite(0, 1), {
      error: (issue) => ((issue.code as string) === 'unrecognized_keys' ? FAULT_TYPE_KEY : 'an object'),
    })
    .refine((p) => Object.values(p).reduce<number>((sum, v) => sum + (v ?? 0), 0) <= 1 + 1e-9, {
      error: 'probabilities summing to at most 1',
    })
    .optional(),
  /**
   * Outcomes for the next `/v1/messages` requests that reach fault injection, in arrival order; once
   * used up, probabilities apply again. Setting a plan restarts its script. Default: empty.
   */
  script: z
    .array(scriptStepSchema, { error: 'an array of fault types, "ok" or {type, retryAfterSeconds}' })
    .optional(),
  /** `retry-after` (whole seconds, >= 1) on injected `rate_limit_error`s. Default 1. */
  retryAfterSeconds: integer(1).optional(),
});
export type FaultPlan = z.input<typeof faultPlanSchema>;

/** What fault injection decided for one request. */
export interface InjectedFault {
  type: FaultType;
  /** Whole seconds; only meaningful for `rate_limit_error` (and ramp_limit_exceeded). */
  retryAfterSeconds: number;
  /** For a streamed request: fail after this many deltas instead of at once; null: at once. */
  afterDeltas: number | null;
  source: 'marker' | 'script' | 'probability';
}

const DEFAULT_FAULT_RETRY_AFTER_SECONDS = 1;

/** Checks a plan from options, a JSON file or the control API; returns a normalised copy. */
export function validateFaultPlan(value: unknown, path = 'faults'): FaultPlan {
  return parseOption(faultPlanSchema, value, path);
}

/** A uniform number in [0, 1) from a string, stable across runs and platforms. */
export function uniformFromKey(key: string): number {
  return hash('sha256', key, 'buffer').readUIntBE(0, 6) / 2 ** 48;
}

/** Applies a plan: the script first, then the probabilities. */
export class FaultInjector {
  #plan: FaultPlan = {};
  #cursor = 0;
  #cumulative: Array<readonly [FaultType, number]> = [];

  constructor(
    plan: FaultPlan,
    private readonly seed: number,
  ) {
    this.setPlan(plan);
  }

  setPlan(plan: FaultPlan): void {
    this.#plan = plan;
    this.#cursor = 0;
    // A fixed order (FAULT_TYPES) keeps draws comparable between plans written with keys in any order.
    let acc = 0;
    this.#cumulative = [];
    for (const type of FAULT_TYPES) {
      const p = plan.probabilities?.[type];
      if (p !== undefined && p > 0) {
        acc += p;
        this.#cumulative.push([type, acc]);
      }
    }
  }

  plan(): FaultPlan {
    return this.#plan;
  }

  get retryAfterSeconds(): number {
    return this.#plan.retryAfterSeconds ?? DEFAULT_FAULT_RETRY_AFTER_SECONDS;
  }

  /** Consumes one script step, if any remain, else draws; null means no fault. */
  decide(promptHash: string, attempt: number): InjectedFault | null {
    const script = this.#plan.script;
    if (script !== undefined && this.#cursor < script.length) {
      const step = script[this.#cursor++];
      if (step === undefined || step === 'ok') return null;
      if (typeof step === 'string')
        return { type: step, retryAfterSeconds: this.retryAfterSeconds, afterDeltas: null, source: 'script' };
      if (step.type === 'ok') return null;
      return {
        type: step.errorCode ?? step.type,
        retryAfterSeconds: step.retryAfterSeconds ?? this.retryAfterSeconds,
        afterDeltas: step.afterDeltas ?? null,
        source: 'script',
      };
    }
    if (this.#cumulative.length === 0) return null;
    const u = uniformFromKey(`fault\u0000${this.seed}\u0000${promptHash}\u0000${attempt}`);
    for (const [type, upTo] of this.#cumulative) {
      if (u < upTo)
        return { type, retryAfterSeconds: this.retryAfterSeconds, afterDeltas: null, source: 'probability' };
    }
    return null;
  }
}
