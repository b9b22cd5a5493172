import { setTimeout as sleep } from 'node:timers/promises';
import { CONDITION_SUMMARY, type Condition } from '../errors/error-table.js';
import type { Logger } from '../logger.js';
import type { Secret } from '../secret.js';

/** An outage-grade event, for the log and the webhook. Never carries the API key. */
interface Alert {
  event: 'key_breaker_tripped' | 'model_breaker_tripped';
  /** API error type, as the API sent it. */
  type: string;
  /** The runner-level condition (`billing`, `auth`, `spend_cap`, `model`). */
  condition: string | null;
  message: string;
  fix: string;
  request_id: string | null;
  since: string;
  prefix: string;
  model?: string;
}

export interface AlerterOptions {
  logger: Logger;
  /** ALERT_WEBHOOK_URL, a secret itself (it may embed a token): never logged. */
  webhookUrl?: Secret | undefined;
  /** POST attempts. Default 4. */
  attempts?: number | undefined;
  /** Timeout of one POST (ms). Default 5,000. */
  timeoutMs?: number | undefined;
}

export type Alerter = (alert: Alert) => Promise<void>;

/**
 * Logs the alert at error level and POSTs it as JSON to the webhook, retrying with backoff. Never
 * throws: an unreachable webhook must not stop the worker that noticed the outage.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const attempts = options.attempts ?? 4;
  const timeoutMs = options.timeoutMs ?? 5_000;
  return async (alert) => {
    const what = alert.condition
      ? `${CONDITION_SUMMARY[alert.condition as Condition] ?? alert.condition} (${alert.type})`
      : alert.type;
    options.logger.error(`${alert.event}: ${what}. ${alert.fix}`, { ...alert });
    const url = options.webhookUrl?.reveal();
    if (!url) return;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(alert),
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (response.ok) return;
        options.logger.warn('alert webhook refused the alert', { status: response.status, attempt });
      } catch (err) {
        options.logger.warn('alert webhook unreachable', { error: (err as Error).name, attempt });
      }
      if (attempt < attempts) await sleep(500 * 2 ** (attempt - 1));
    }
  };
}
