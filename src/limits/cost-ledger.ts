import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger, type Logger } from '../logger.js';
import type { RedisClient } from '../redis/connection.js';
import type { KeyLayout } from '../redis/keys.js';
import { LuaScript } from '../redis/lua-script.js';
import { isTransientRedisError } from '../redis/transient-error.js';

/**
 * The cost ceiling of a batch (issue 15), kept in Redis so every worker on every host spends from
 * one ledger. Amounts are integer nano-dollars (src/pricing/request-cost.ts).
 *
 * In the batch record (so `status` reads them with the rest, and `delete` removes them):
 *   max_cost       the ceiling (absent: the batch has none, and the ledger is not used)
 *   cost_spent     settled spend: real usage of calls that ended, worst case of the unknown ones
 *   cost_reserved  the sum of the reservations in flight
 *   pause:cost_ceiling  JSON of the batch-scoped pause, while the ceiling holds the batch
 * and in `costLeases(batch)`, one member `<amount>:<id>` per reservation in flight, scored by when
 * its lease expires (Redis time, ms). The holder renews its leases; one that expires (its worker was
 * SIGKILLed, or lost Redis for the whole lease) is taken back inside the next script that looks,
 * and charged at its worst case: the call may have been made and billed, and nothing tells.
 *
 * A request asks to reserve its worst case: granted when settled + reserved + this <= ceiling;
 * `wait` when it does not fit but reservations in flight may settle lower and make room; `exceeded`
 * when settled spend + this > ceiling with nothing in flight: no amount of waiting can make it fit,
 * so the same script pauses the batch (a `pause:cost_ceiling` field, the batch in the set of paused
 * batches the dispatcher skips, the send-time epoch bumped). A settled spend never passes the
 * ceiling: every amount settled was reserved first and is at most its reservation... except a call
 * that cost more than its worst case (an estimate too low): settled as billed, and the next
 * reservation then finds less room.
 */

const TIME = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
`;

/**
 * Reads the ledger and takes back expired leases, charging each at its amount. KEYS[1] batch,
 * KEYS[2] leases. Leaves `ceiling` (nil: no ceiling), `spent`, `reserved`.
 */
const RECLAIM = `
local ceiling = tonumber(redis.call('HGET', KEYS[1], 'max_cost') or '')
local spent = tonumber(redis.call('HGET', KEYS[1], 'cost_spent') or '0') or 0
local reserved = tonumber(redis.call('HGET', KEYS[1], 'cost_reserved') or '0') or 0
local reserved_before = reserved
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #expired > 0 then
  for _, member in ipairs(expired) do
    local amount = tonumber(string.match(member, '^(%d+):')) or 0
    reserved = reserved - amount
    spent = spent + amount
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
end
-- Nothing in flight means nothing reserved (repairs a total a lost key or a hand edit left over).
if reserved < 0 or redis.call('ZCARD', KEYS[2]) == 0 then reserved = 0 end
if #expired > 0 or reserved ~= reserved_before then
  redis.call('HSET', KEYS[1], 'cost_spent', string.format('%d', spent), 'cost_reserved', string.format('%d', reserved))
end
`;

/**
 * KEYS: batch, leases, paused batches, epoch. ARGV: batch id, member (`<amount>:<id>`), amount,
 * lease ms, pause JSON template (spent and ceiling filled in here).
 * Returns {status, spent, reserved, ceiling}: 0 granted, 1 wait, 2 exceeded (this call paused the
 * batch), 3 paused already, 4 no ceiling, -1 no batch.
 */
const RESERVE = new LuaScript(`${TIME}
if redis.call('HEXISTS', KEYS[1], 'id') == 0 or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return {-1, '0', '0', '0'}
end
${RECLAIM}
local function reply(status)
  return {status, string.format('%d', spent), string.format('%d', reserved), string.format('%d', ceiling or 0)}
end
if ceiling == nil then return reply(4) end
if redis.call('HEXISTS', KEYS[1], 'pause:cost_ceiling') == 1 then return reply(3) end
local amount = tonumber(ARGV[3])
if spent + reserved + amount <= ceiling then
  reserved = reserved + amount
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
  redis.call('HSET', KEYS[1], 'cost_reserved', string.format('%d', reserved))
  return reply(0)
end
if reserved > 0 then return reply(1) end
local pause = cjson.decode(ARGV[5])
pause['spent_nano'] = spent
pause['ceiling_nano'] = ceiling
pause['next_nano'] = amount
redis.call('HSET', KEYS[1], 'pause:cost_ceiling', cjson.encode(pause))
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[4])
return reply(2)
`);

/**
 * KEYS: batch, leases. ARGV: member, amount reserved, actual cost. Returns 1 settled, 0 not found
 * (its lease expired and it was charged at its amount already; or the batch is gone).
 */
const SETTLE = new LuaScript(`
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
local reserved = (tonumber(redis.call('HGET', KEYS[1], 'cost_reserved') or '0') or 0) - tonumber(ARGV[2])
if reserved < 0 or redis.call('ZCARD', KEYS[2]) == 0 then reserved = 0 end
redis.call('HSET', KEYS[1], 'cost_reserved', string.format('%d', reserved))
redis.call('HINCRBY', KEYS[1], 'cost_spent', ARGV[3])
return 1
`);

/** KEYS: leases. ARGV: ttl ms, members. Renews the leases still held (never re-adds one taken back). */
const RENEW = new LuaScript(`${TIME}
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 1
`);

/**
 * KEYS: batch, leases, paused batches, epoch. ARGV: batch id, new ceiling ('' keeps it). Sets the
 * ceiling, lifts the batch's own pauses (every `pause:*` field) and bumps the epoch.
 * Returns {1 | -1 no batch, spent, reserved, ceiling}.
 */
const RESUME = new LuaScript(`${TIME}
if redis.call('HEXISTS', KEYS[1], 'id') == 0 or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return {-1, '0', '0', '0'}
end
${RECLAIM}
if ARGV[2] ~= '' then
  ceiling = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'max_cost', ARGV[2])
end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 6) == 'pause:' then redis.call('HDEL', KEYS[1], field) end
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[4])
return {1, string.format('%d', spent), string.format('%d', reserved), string.format('%d', ceiling or 0)}
`);

/** KEYS: batch, leases. Read and reclaim only. Returns {ceiling ('' none), spent, reserved}. */
const READ = new LuaScript(`${TIME}
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return {'', '0', '0'} end
${RECLAIM}
return {ceiling and string.format('%d', ceiling) or '', string.format('%d', spent), string.format('%d', reserved)}
`);

/** A reservation held: settle it exactly once with {@link CostLedger.settle}. */
export interface CostReservation {
  readonly batchId: string;
  readonly id: string;
  /** The worst case reserved (nano-dollars). */
  readonly amount: number;
}

/** The ledger of a batch, in nano-dollars. */
export interface LedgerState {
  /** Null: the batch has no ceiling. */
  ceiling: number | null;
  spent: number;
  reserved: number;
}

/** What one look at the ledger answered. */
export type ReserveAnswer =
  | { kind: 'granted'; reservation: CostReservation; state: LedgerState }
  /** Does not fit now; reservations in flight may settle lower. */
  | { kind: 'wait'; state: LedgerState }
  /** Settled spend + this worst case > ceiling with nothing in flight: this call paused the batch. */
  | { kind: 'exceeded'; state: LedgerState }
  /** The batch is paused by its ceiling already. */
  | { kind: 'paused'; state: LedgerState }
  /** The batch has no ceiling (or is gone): send without a reservation. */
  | { kind: 'unlimited' };

/** What the pause record of a batch held by its ceiling says (the `pause:cost_ceiling` field). */
export interface CostPauseTemplate {
  reason: 'cost_ceiling';
  message: string;
  since: string;
  fix: string;
}

export interface CostLedgerOptions {
  redis: RedisClient;
  keys: KeyLayout;
  /**
   * A reservation whose holder stops renewing it (a SIGKILLed worker) is taken back after this,
   * charged at its worst case (ms). Default 30,000; the worker passes its job lock duration, after
   * which the job itself is taken back and sent again.
   */
  leaseTtlMs?: number | undefined;
  /** The longest a waiting request sleeps before looking again, to see other processes' settlements (ms). Default 250. */
  maxPollMs?: number | undefined;
  logger?: Logger | undefined;
}

/** How long settle() keeps retrying a Redis that does not answer before leaving it to the lease (ms). */
const SETTLE_RETRY_MS = 10_000;

/**
 * Reserve / settle against the cost ceilings of batches, with leases that expire (see the module
 * comment above for the keys and the rules). One per worker process; its leases are renewed by
 * one timer for all of them.
 */
export class CostLedger {
  readonly #redis: RedisClient;
  readonly #keys: KeyLayout;
  readonly #leaseTtlMs: number;
  readonly #maxPollMs: number;
  readonly #logger: Logger;
  /** Reservations held by this process, by batch: member → reservation. */
  readonly #held = new Map<string, Map<string, CostReservation>>();
  /** Requests of this process waiting for room: woken at once by a settlement here. */
  readonly #waiters = new Set<() => void>();
  readonly #renewer: NodeJS.Timeout;

  constructor(options: CostLedgerOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.#maxPollMs = options.maxPollMs ?? 250;
    this.#logger = options.logger ?? silentLogger;
    this.#renewer = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#leaseTtlMs / 3)));
    this.#renewer.unref();
  }

  /**
   * One look: reserve `amount` nano-dollars for a call of the batch, or say why not. `pause` is
   * what the batch's pause record says if this look pauses it.
   */
  async tryReserve(batchId: string, amount: number, pause: CostPauseTemplate): Promise<ReserveAnswer> {
    const id = randomBytes(8).toString('hex');
    const whole = Math.max(0, Math.ceil(amount));
    const member = `${whole}:${id}`;
    const reservation: CostReservation = { batchId, id: member, amount: whole };
    // Held locally before the script runs: a grant the reply of which is lost is still renewed,
    // then dropped (settled at 0) below.
    this.#hold(reservation);
    let reply: [number, string, string, string];
    try {
      reply = (await RESERVE.run(
        this.#redis,
        [
          this.#keys.batch(batchId),
          this.#keys.costLeases(batchId),
          this.#keys.pausedBatches(),
          this.#keys.epoch(),
        ],
        [batchId, member, whole, this.#leaseTtlMs, JSON.stringify(pause)],
      )) as [number, string, string, string];
    } catch (err) {
      this.#drop(reservation);
      throw err;
    }
    const [status, spent, reserved, ceiling] = reply;
    const state: LedgerState = { ceiling: Number(ceiling), spent: Number(spent), reserved: Number(reserved) };
    if (Number(status) === 0) return { kind: 'granted', reservation, state };
    this.#drop(reservation);
    switch (Number(status)) {
      case 1:
        return { kind: 'wait', state };
      case 2:
        return { kind: 'exceeded', state };
      case 3:
        return { kind: 'paused', state };
      default:
        return { kind: 'unlimited' };
    }
  }

  /**
   * Reserves, waiting while the answer is `wait`: woken at once by a settlement in this process,
   * and otherwise looking again after a short backoff (25 ms doubling to `maxPollMs`) for those of
   * other processes. Returns the first answer that is not `wait`; null when `signal` aborted.
   */
  async reserve(
    batchId: string,
    amount: number,
    pause: CostPauseTemplate,
    signal?: AbortSignal,
  ): Promise<Exclude<ReserveAnswer, { kind: 'wait' }> | null> {
    for (let sleep = 25; ; sleep = Math.min(sleep * 2, this.#maxPollMs)) {
      if (signal?.aborted) return null;
      const answer = await this.tryReserve(batchId, amount, pause);
      if (answer.kind !== 'wait') return answer;
      await this.#waitForRoom(sleep, signal);
    }
  }

  /**
   * Settles a reservation to what the call really cost (nano-dollars; 0 when it was never sent or
   * the API answered with an error status, which is not billed). Retries a Redis that does not
   * answer for a while; past that the lease expires and charges the worst case (the safe side).
   */
  async settle(reservation: CostReservation, actual: number): Promise<void> {
    const cost = Math.max(0, Math.ceil(actual));
    const deadline = Date.now() + SETTLE_RETRY_MS;
    try {
      for (let failures = 0; ; failures++) {
        try {
          await SETTLE.run(
            this.#redis,
            [this.#keys.batch(reservation.batchId), this.#keys.costLeases(reservation.batchId)],
            [reservation.id, reservation.amount, cost],
          );
          return;
        } catch (err) {
          if (!isTransientRedisError(err) || Date.now() >= deadline) throw err;
          await delay(Math.min(100 * 2 ** failures, 2_000));
        }
      }
    } catch (err) {
      this.#logger.warn('cost settlement failed; its lease will charge the worst case', {
        batch_id: reservation.batchId,
        error: (err as Error).message,
      });
    } finally {
      this.#drop(reservation);
      for (const wake of [...this.#waiters]) wake();
    }
  }

  /**
   * Sets a new ceiling (nano-dollars; null keeps it) and lifts the batch's own pauses. Returns the
   * ledger after, or null when there is no such batch.
   */
  async resume(batchId: string, ceiling: number | null): Promise<LedgerState | null> {
    const [status, spent, reserved, max] = (await RESUME.run(
      this.#redis,
      [
        this.#keys.batch(batchId),
        this.#keys.costLeases(batchId),
        this.#keys.pausedBatches(),
        this.#keys.epoch(),
      ],
      [batchId, ceiling === null ? '' : String(Math.ceil(ceiling))],
    )) as [number, string, string, string];
    if (Number(status) !== 1) return null;
    return { ceiling: Number(max) || null, spent: Number(spent), reserved: Number(reserved) };
  }

  /** The batch's ledger now (expired leases taken back first). */
  async read(batchId: string): Promise<LedgerState> {
    const [ceiling, spent, reserved] = (await READ.run(
      this.#redis,
      [this.#keys.batch(batchId), this.#keys.costLeases(batchId)],
      [],
    )) as [string, string, string];
    return {
      ceiling: ceiling === '' ? null : Number(ceiling),
      spent: Number(spent),
      reserved: Number(reserved),
    };
  }

  /** Stops renewing. Reservations still held expire by themselves (charged at their worst case). */
  close(): void {
    clearInterval(this.#renewer);
    for (const wake of [...this.#waiters]) wake();
  }

  #hold(reservation: CostReservation): void {
    let batch = this.#held.get(reservation.batchId);
    if (!batch) this.#held.set(reservation.batchId, (batch = new Map<string, CostReservation>()));
    batch.set(reservation.id, reservation);
  }

  #drop(reservation: CostReservation): void {
    const batch = this.#held.get(reservation.batchId);
    batch?.delete(reservation.id);
    if (batch?.size === 0) this.#held.delete(reservation.batchId);
  }

  #waitForRoom(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async #renew(): Promise<void> {
    for (const [batchId, held] of this.#held) {
      if (held.size === 0) continue;
      try {
        await RENEW.run(this.#redis, [this.#keys.costLeases(batchId)], [this.#leaseTtlMs, ...held.keys()]);
      } catch (err) {
        this.#logger.debug('cost lease renewal failed; retried at the next tick', {
          batch_id: batchId,
          error: (err as Error).message,
        });
      }
    }
  }
}
