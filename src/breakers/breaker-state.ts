import { isCondition, type Condition } from '../errors/error-table.js';
import type { Runtime } from '../runtime.js';

/** The key-wide breaker: every request of the API key would fail the same way, so the queue is paused. */
export interface KeyBreakerState {
  /** `key_breaker`, or `manual` for `claude-batch pause`. */
  reason: 'key_breaker' | 'manual';
  /** API error type that tripped it: authentication_error, billing_error, rate_limit_error (spend cap); `manual`. */
  type: string;
  /** `enforced_spend_limit_reached` for the spend cap, else null. */
  error_code: string | null;
  /**
   * What is wrong, in the runner's words (`billing` for credits exhausted, whatever shape the API
   * sent it in; `auth`; `spend_cap`); null for a manual pause.
   */
  condition: Condition | null;
  message: string;
  request_id: string | null;
  /** RFC 3339. */
  since: string;
  /** What to do, from the error table. */
  fix: string;
}

/** A model breaker: the model is unknown or forbidden, so its remaining requests are dead-lettered unsent. */
export interface ModelBreakerState {
  model: string;
  type: string;
  /** `model` (absent in breakers recorded before conditions existed). */
  condition?: Condition | null;
  message: string;
  /** The request whose failure tripped it. */
  request_id: string | null;
  since: string;
  fix: string;
}

/** What a request not sent because its model's breaker is open says in its dead-letter entry. */
export function modelBreakerMessage(breaker: ModelBreakerState): string {
  return (
    `not sent: model ${breaker.model} failed with ${breaker.type} (request ${breaker.request_id ?? 'unknown'}: ` +
    `${breaker.message}), so its remaining requests were stopped. ${breaker.fix}`
  );
}

export interface BreakerState {
  key: KeyBreakerState | null;
  models: ModelBreakerState[];
}

/** Reads both breakers (two commands). */
export async function getBreakerState(runtime: Runtime): Promise<BreakerState> {
  const [key, models] = await Promise.all([
    runtime.redis.hgetall(runtime.keys.keyBreaker()),
    runtime.redis.hgetall(runtime.keys.modelBreakers()),
  ]);
  return {
    key: key['type']
      ? {
          reason: key['reason'] === 'manual' ? 'manual' : 'key_breaker',
          type: key['type'],
          error_code: key['error_code'] || null,
          condition: isCondition(key['condition']) ? key['condition'] : null,
          message: key['message'] ?? '',
          request_id: key['request_id'] || null,
          since: key['since'] ?? '',
          fix: key['fix'] ?? '',
        }
      : null,
    models: Object.values(models).map((json) => JSON.parse(json) as ModelBreakerState),
  };
}
