/**
 * Which path a batch's requests take (issue 14): the live Messages API one by one, or the hosted
 * Message Batches API at half price, and when an `auto` batch must give up waiting for the hosted
 * one to finish on time.
 */

/** As submitted: `live` (the default), `batches` (everything hosted), `auto` (hosted while the deadline leaves room). */
export type Via = 'live' | 'batches' | 'auto';

const VIAS: readonly Via[] = ['live', 'batches', 'auto'];

/** The path a batch's share goes to now. */
export type Route = 'live' | 'hosted';

export function parseVia(value: unknown, field = '--via'): Via {
  if (typeof value === 'string' && (VIAS as readonly string[]).includes(value)) return value as Via;
  throw new TypeError(`${field}: must be one of ${VIAS.join(', ')}, got ${JSON.stringify(value)}`);
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A deadline as a duration from `now` (`90m`, `6h`, `1d12h`, `45s`) or an RFC 3339 time
 * (`2026-12-03T06:00:00Z`), as epoch ms. Refuses one in the past or unreadable, naming the field.
 */
export function parseDeadline(value: unknown, now = Date.now(), field = '--deadline'): number {
  if (value instanceof Date) return checkFuture(value.getTime(), now, field, value.toISOString());
  if (typeof value === 'number' && Number.isFinite(value))
    return checkFuture(value, now, field, String(value));
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(
      `${field}: must be a duration (90m, 6h, 1d12h) or an RFC 3339 time, got ${JSON.stringify(value)}`,
    );
  }
  const text = value.trim();
  if (/^(\d+[smhd])+$/.test(text)) {
    let ms = 0;
    for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) ms += Number(n) * UNIT_MS[unit!]!;
    return checkFuture(now + ms, now, field, text);
  }
  // RFC 3339 needs a date, a time and a zone: a bare date or a local time would be read in the
  // machine's zone, which a person submitting from elsewhere would not expect.
  if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/.test(text)) {
    const at = Date.parse(text);
    if (Number.isFinite(at)) return checkFuture(at, now, field, text);
  }
  throw new TypeError(
    `${field}: must be a duration (90m, 6h, 1d12h) or an RFC 3339 time with a zone (2026-12-03T06:00:00Z), got ${JSON.stringify(text)}`,
  );
}

function checkFuture(at: number, now: number, field: string, shown: string): number {
  if (at <= now) throw new RangeError(`${field}: ${shown} is not in the future`);
  return at;
}

/** What `auto` plans with: how fast the live path goes, and how long a hosted cancel takes to end. */
export interface RoutePlan {
  /** Requests per second the live path is planned to sustain (the budget's RPM / 60, with a margin). */
  liveRatePerSec: number;
  /** How long a hosted batch takes from `cancel` to `ended` (ms): running requests finish first. */
  cancelToEndMs: number;
}

/**
 * When an `auto` batch must stop waiting for the hosted API: its deadline minus the time the live
 * path needs for everything still open (a hosted batch reports nothing until it ends, so nothing
 * hosted counts as done) and the time a cancel takes to come back. Infinity without a deadline.
 */
export function switchAt(deadline: number | null, remaining: number, plan: RoutePlan): number {
  if (deadline === null) return Number.POSITIVE_INFINITY;
  const liveMs = plan.liveRatePerSec > 0 ? (remaining / plan.liveRatePerSec) * 1_000 : 0;
  return deadline - plan.cancelToEndMs - liveMs;
}

/** The path a batch starts on: `auto` goes hosted only while its deadline leaves room for the switch. */
export function initialRoute(
  via: Via,
  deadline: number | null,
  total: number,
  plan: RoutePlan,
  now: number,
): Route {
  if (via === 'live') return 'live';
  if (via === 'batches') return 'hosted';
  return switchAt(deadline, total, plan) > now ? 'hosted' : 'live';
}

/** What `auto` plans with, from the config: {@link RoutePlan} of CLAUDE_BATCH_AUTO_LIVE_RPM (else 80 % of --rpm, else 1,000) and CLAUDE_BATCH_HOSTED_CANCEL_MS. */
export function routePlanOf(config: { autoLiveRpm: number; rpm: number; hostedCancelMs: number }): RoutePlan {
  const rpm = config.autoLiveRpm > 0 ? config.autoLiveRpm : config.rpm > 0 ? config.rpm * 0.8 : 1_000;
  return { liveRatePerSec: rpm / 60, cancelToEndMs: config.hostedCancelMs };
}
