import { randomBytes } from 'node:crypto';
import { silentLogger, type Logger } from '../logger.js';
import type { RedisClient } from '../redis/connection.js';
import { accountConcurrencyClassesKey } from '../redis/keys.js';
import { LuaScript } from '../redis/lua-script.js';
import { isTransientRedisError } from '../redis/transient-error.js';
import { concurrencyKey, inFlightLeasesKey } from './budget-keys.js';

/** A slot to send one request of a model class. Give it back with {@link InFlightController.release}. */
export interface InFlightLease {
  readonly modelClass: string;
  readonly id: string;
}

/** How the call that held a lease ended, as far as the controller cares. */
export interface InFlightReport {
  /** The API answered 429 "concurrent connections exceeded": the cap is too high. */
  concurrencyLimited: boolean;
}

export interface InFlightControllerOptions {
  redis: RedisClient;
  /** The API key's fingerprint: the limit is the key's, whatever the queue prefix. */
  accountId: string;
  /** Quiet period (no concurrency 429) before the cap is raised by one (ms). Default 30,000. */
  probeQuietMs?: number | undefined;
  /** A 429 during a probe doubles the quiet period, up to this many times the base. Default 16. */
  maxQuietFactor?: number | undefined;
  /** A lease whose holder stops renewing it (a SIGKILLed worker) returns after this (ms). Default 30,000. */
  leaseTtlMs?: number | undefined;
  /** The longest a waiting request sleeps before asking Redis again, to see other processes' releases (ms). Default 250. */
  pollMs?: number | undefined;
  /** While no limit is known, how often a class in use looks whether another process learned one (ms). Default 1,000. */
  watchMs?: number | undefined;
  logger?: Logger | undefined;
}

/** The controller's shared state for one class, for `status` and `/metrics`. */
export interface ConcurrencyCapSnapshot {
  accountId: string;
  modelClass: string;
  /** The learned concurrency limit (the cap the API's 429s taught, raised by probes), or null. */
  learned: number | null;
  /** Leases held now, by every process. */
  inFlight: number;
  /** The quiet period in force before the next probe (ms). */
  quietMs: number | null;
  probes: number;
  /** Probes that met a 429 and were put back. */
  failedProbes: number;
  /** Concurrency 429s seen, in all. */
  limited: number;
}

const TIME = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
`;

/** Kept this long after its last change, so a limit learned last night is still known this morning. */
const STATE_TTL_MS = 24 * 3_600_000;

/**
 * Acquire one slot. KEYS: leases, state. ARGV: lease id, ttl ms, target (0: none), base quiet ms.
 * Expired leases (holders gone) are dropped first. The cap is the lower of the learned limit and
 * the target (none: no cap). When the cap is full and the learned limit has been quiet (no 429,
 * no raise) for the quiet period, the cap is raised by one and this request is the probe; a probe
 * that held for a whole quiet period resets the quiet period to the base.
 * Returns {granted 0|1, leases held, cap (-1 none), probed 0|1}.
 */
const ACQUIRE = new LuaScript(`${TIME}
local leases, state = KEYS[1], KEYS[2]
local ttl, target, base = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local count = redis.call('ZCARD', leases)
local f = redis.call('HMGET', state, 'learned', 'quiet', 'changed', 'probing')
local learned = tonumber(f[1])
local cap = learned
if target > 0 and (cap == nil or target < cap) then cap = target end
local function grant(probed, c)
  redis.call('ZADD', leases, now + ttl, ARGV[1])
  redis.call('PEXPIRE', leases, ttl * 2)
  return {1, count + 1, c or -1, probed}
end
if cap == nil or count < cap then return grant(0, cap) end
if learned ~= nil and (target <= 0 or learned < target) then
  local quiet = tonumber(f[2]) or base
  if now - (tonumber(f[3]) or 0) >= quiet then
    if f[4] == '1' then quiet = base end
    learned = learned + 1
    redis.call('HSET', state, 'learned', learned, 'quiet', quiet, 'changed', now, 'probing', 1)
    redis.call('HINCRBY', state, 'probes', 1)
    redis.call('PEXPIRE', state, ${STATE_TTL_MS})
    return grant(1, learned)
  end
end
return {0, count, cap, 0}
`);

/**
 * A concurrency 429 on a lease. KEYS: leases, state. ARGV: lease id, base quiet ms, max quiet ms,
 * ttl ms, then ids of this process's leases not yet in Redis (registered first, so the count is
 * of every request in flight). The learned limit becomes min(itself, leases in flight - 1), at
 * least 1 (the refused request is counted: it was one too many). A 429 while probing puts the
 * cap back that way and doubles the quiet period (bounded). The refused lease is released.
 * Returns {learned, leases counted}.
 */
const NOTE_LIMIT = new LuaScript(`${TIME}
local leases, state = KEYS[1], KEYS[2]
local base, maxQuiet, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 5, #ARGV do redis.call('ZADD', leases, now + ttl, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local count = redis.call('ZCARD', leases)
local n = count - 1
if n < 1 then n = 1 end
local f = redis.call('HMGET', state, 'learned', 'quiet', 'probing')
local learned = tonumber(f[1])
if learned == nil or n < learned then learned = n end
redis.call('HSET', state, 'learned', learned, 'changed', now)
if f[3] == '1' then
  local quiet = (tonumber(f[2]) or base) * 2
  if quiet > maxQuiet then quiet = maxQuiet end
  redis.call('HSET', state, 'quiet', quiet, 'probing', 0)
  redis.call('HINCRBY', state, 'failed_probes', 1)
end
redis.call('HINCRBY', state, 'limited', 1)
redis.call('PEXPIRE', state, ${STATE_TTL_MS})
redis.call('ZREM', leases, ARGV[1])
return {learned, count}
`);

/** Renew leases still held. KEYS: leases. ARGV: ttl ms, ids. */
const RENEW = new LuaScript(`${TIME}
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`);

/** Add leases held already (a class becoming tracked). KEYS: leases. ARGV: ttl ms, ids. */
const REGISTER = new LuaScript(`${TIME}
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`);

/** Read only. KEYS: leases, state. Returns {leases live now, learned, quiet, probes, failed_probes, limited}. */
const SNAPSHOT = new LuaScript(`${TIME}
local f = redis.call('HMGET', KEYS[2], 'learned', 'quiet', 'probes', 'failed_probes', 'limited')
return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), f[1] or '', f[2] or '', f[3] or '0', f[4] or '0', f[5] or '0'}
`);

interface Waiter {
  resolve: (lease: InFlightLease) => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
}

interface ClassState {
  readonly name: string;
  readonly leasesKey: string;
  readonly stateKey: string;
  /**
   * Whether acquiring goes through Redis: a concurrency limit is known for (key, class), or a
   * target is set. Until then leases are local only and cost nothing.
   */
  tracked: boolean;
  /** Registration of the local leases in Redis when the class became tracked. */
  registering: Promise<void>;
  /** This process's leases: id → whether it is in Redis. */
  readonly local: Map<string, boolean>;
  readonly waiters: Waiter[];
  pumping: boolean;
  wake: (() => void) | null;
  watchedAt: number;
  watching: boolean;
}

/**
 * The runner's one in-flight controller: how many requests of a model class may be in flight at
 * once for an API key, across every process, through leases in Redis that expire on their own.
 *
 * The cap is min(the learned concurrency limit, the sized target); `--concurrency` (BullMQ's
 * per-process slots) bounds each process below that. With neither a learned limit nor a target,
 * acquiring costs no Redis round trip: leases are only counted locally, and each class in use
 * looks at most every `watchMs` whether another process learned a limit.
 *
 * A 429 "concurrent connections exceeded" ({@link release} with `concurrencyLimited`) makes the
 * class tracked (this process's leases go to Redis) and sets the learned limit to the leases in
 * flight at that moment minus one (the refused request was one too many), for every process.
 * After a quiet period with requests waiting for a slot, the cap is raised by one (a probe); a 429
 * during it puts it back and doubles the quiet period (up to `maxQuietFactor` times the base), so
 * each probe costs at most one 429.
 *
 * Requests waiting for a slot wait in this process in FIFO order: only the head asks Redis, woken
 * by a local release or after `pollMs` (other processes' releases). The BullMQ job lock is renewed
 * by BullMQ meanwhile, as during the rate budget's wait.
 *
 * Issue 16 (a cap sized from the budget and the latency) sets the target with {@link setTarget};
 * issue 15 (cost reservations) can hold its reservation for the lifetime of a lease.
 */
export class InFlightController {
  readonly #redis: RedisClient;
  readonly #accountId: string;
  readonly #baseQuietMs: number;
  readonly #maxQuietMs: number;
  readonly #leaseTtlMs: number;
  readonly #pollMs: number;
  readonly #watchMs: number;
  readonly #logger: Logger;
  readonly #states = new Map<string, ClassState>();
  readonly #targets = new Map<string, number>();
  readonly #renewer: NodeJS.Timeout;
  #closed = false;

  constructor(options: InFlightControllerOptions) {
    this.#redis = options.redis;
    this.#accountId = options.accountId;
    this.#baseQuietMs = options.probeQuietMs ?? 30_000;
    this.#maxQuietMs = this.#baseQuietMs * (options.maxQuietFactor ?? 16);
    this.#leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.#pollMs = options.pollMs ?? 250;
    this.#watchMs = options.watchMs ?? 1_000;
    this.#logger = options.logger ?? silentLogger;
    this.#renewer = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#leaseTtlMs / 3)));
    this.#renewer.unref();
  }

  /**
   * Sets the sized target of a class (null: none), the hook for issue 16: the cap becomes
   * min(learned limit, target). A target makes the class tracked (leases counted in Redis).
   */
  setTarget(modelClass: string, target: number | null): void {
    if (target === null) {
      this.#targets.delete(modelClass);
      return;
    }
    this.#targets.set(modelClass, Math.max(1, Math.floor(target)));
    this.#track(this.#stateFor(modelClass));
  }

  /** Resolves with a lease once a request of the class may be sent; rejects if the signal aborts. */
  acquire(modelClass: string, signal?: AbortSignal): Promise<InFlightLease> {
    if (this.#closed) return Promise.reject(new Error('the in-flight controller is closed'));
    if (signal?.aborted) return Promise.reject(abortError());
    const st = this.#stateFor(modelClass);
    if (!st.tracked) {
      this.#watch(st);
      const id = newId();
      st.local.set(id, false);
      return Promise.resolve({ modelClass, id });
    }
    return new Promise<InFlightLease>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      st.waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const i = st.waiters.indexOf(waiter);
          if (i < 0) return;
          st.waiters.splice(i, 1);
          reject(abortError());
        },
        { once: true },
      );
      void this.#pump(st);
    });
  }

  /** Gives a lease back; a concurrency 429 teaches the limit first. Never throws on Redis trouble. */
  async release(lease: InFlightLease, report: InFlightReport = { concurrencyLimited: false }): Promise<void> {
    const st = this.#states.get(lease.modelClass);
    if (!st) return;
    const registered = st.local.get(lease.id);
    if (registered === undefined) return;
    try {
      if (report.concurrencyLimited) {
        const wasTracked = st.tracked;
        st.tracked = true;
        await st.registering;
        // This process's leases not in Redis yet (the limit was unknown): registered in the same
        // script, so the count is of every request in flight, this one included.
        const unregistered = [...st.local].filter(([, inRedis]) => !inRedis).map(([id]) => id);
        for (const id of unregistered) st.local.set(id, true);
        const [learned, counted] = (await NOTE_LIMIT.run(
          this.#redis,
          [st.leasesKey, st.stateKey],
          [lease.id, this.#baseQuietMs, this.#maxQuietMs, this.#leaseTtlMs, ...unregistered],
        )) as [number, number];
        st.local.delete(lease.id);
        if (!wasTracked) {
          await this.#redis.sadd(accountConcurrencyClassesKey(this.#accountId), st.name);
        }
        this.#logger.debug('concurrency limit: in-flight cap lowered', {
          class: st.name,
          learned,
          inFlight: counted,
        });
      } else {
        st.local.delete(lease.id);
        if (registered) await this.#redis.zrem(st.leasesKey, lease.id);
      }
    } catch (err) {
      // An unreleased lease expires by itself after the lease TTL.
      st.local.delete(lease.id);
      this.#logger.warn('could not release an in-flight lease; it expires by itself', {
        class: st.name,
        error: (err as Error).message,
      });
    }
    st.wake?.();
  }

  /** Whether requests of the class go through Redis (a limit was learned, or a target is set). */
  isLimited(modelClass: string): boolean {
    return this.#states.get(modelClass)?.tracked ?? false;
  }

  /** Requests of this process waiting for a slot now. */
  waiting(): number {
    let n = 0;
    for (const st of this.#states.values()) n += st.waiters.length;
    return n;
  }

  /** The learned caps of this key's classes, as every process sees them. */
  async snapshot(): Promise<ConcurrencyCapSnapshot[]> {
    return readConcurrencyCaps(this.#redis, [this.#accountId]);
  }

  /** Stops renewing; waiting requests are refused. Leases still held expire by themselves. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#renewer);
    for (const st of this.#states.values()) {
      for (const w of st.waiters.splice(0)) w.reject(new Error('the in-flight controller is closed'));
      st.wake?.();
    }
  }

  #stateFor(modelClass: string): ClassState {
    let st = this.#states.get(modelClass);
    if (!st) {
      st = {
        name: modelClass,
        leasesKey: inFlightLeasesKey(this.#accountId, modelClass),
        stateKey: concurrencyKey(this.#accountId, modelClass),
        tracked: false,
        registering: Promise.resolve(),
        local: new Map(),
        waiters: [],
        pumping: false,
        wake: null,
        watchedAt: 0,
        watching: false,
      };
      this.#states.set(modelClass, st);
    }
    return st;
  }

  /** Looks (at most every watchMs, off the request's path) whether another process learned a limit. */
  #watch(st: ClassState): void {
    if (st.watching || Date.now() - st.watchedAt < this.#watchMs) return;
    st.watching = true;
    st.watchedAt = Date.now();
    void this.#redis
      .hexists(st.stateKey, 'learned')
      .then((known) => {
        if (known === 1) this.#track(st);
      })
      .catch(() => {})
      .finally(() => {
        st.watching = false;
      });
  }

  /** From now on the class goes through Redis; this process's leases are registered there first. */
  #track(st: ClassState): void {
    if (st.tracked) return;
    st.tracked = true;
    const ids = [...st.local].filter(([, inRedis]) => !inRedis).map(([id]) => id);
    if (ids.length === 0) return;
    for (const id of ids) st.local.set(id, true);
    st.registering = REGISTER.run(this.#redis, [st.leasesKey], [this.#leaseTtlMs, ...ids])
      .then(() => undefined)
      .catch(() => undefined);
  }

  /** The head of this process's queue for the class asks Redis until granted, sleeping between looks. */
  async #pump(st: ClassState): Promise<void> {
    if (st.pumping) return;
    st.pumping = true;
    try {
      await st.registering;
      while (st.waiters.length > 0 && !this.#closed) {
        const head = st.waiters[0]!;
        const id = newId();
        let granted: boolean;
        try {
          const reply = (await ACQUIRE.run(
            this.#redis,
            [st.leasesKey, st.stateKey],
            [id, this.#leaseTtlMs, this.#targets.get(st.name) ?? 0, this.#baseQuietMs],
          )) as number[];
          granted = Number(reply[0]) === 1;
          if (granted && Number(reply[3]) === 1) {
            this.#logger.info('probing a higher in-flight cap', { class: st.name, cap: Number(reply[2]) });
          }
        } catch (err) {
          if (!isTransientRedisError(err)) {
            st.waiters.shift();
            head.reject(err as Error);
            continue;
          }
          granted = false;
        }
        if (granted) {
          st.local.set(id, true);
          if (st.waiters[0] === head) {
            st.waiters.shift();
            head.resolve({ modelClass: st.name, id });
          } else {
            // The head gave up while we asked: the slot goes back.
            st.local.delete(id);
            await this.#redis.zrem(st.leasesKey, id).catch(() => {});
          }
          continue;
        }
        await this.#sleep(st, this.#pollMs);
      }
    } finally {
      st.pumping = false;
    }
  }

  #sleep(st: ClassState, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        if (st.wake === done) st.wake = null;
        resolve();
      }
      st.wake = done;
    });
  }

  /** Renews this process's leases in Redis, so a long call keeps its slot. */
  async #renew(): Promise<void> {
    for (const st of this.#states.values()) {
      const ids = [...st.local].filter(([, inRedis]) => inRedis).map(([id]) => id);
      if (ids.length === 0) continue;
      try {
        await RENEW.run(this.#redis, [st.leasesKey], [this.#leaseTtlMs, ...ids]);
      } catch {
        // Retried at the next tick; a lease lost meanwhile only lets one more request go.
      }
    }
  }
}

/**
 * The learned caps of the given keys' classes (the classes come from the key's index, so this
 * needs neither the key nor the budgets file): for `status` and `/metrics`.
 */
export async function readConcurrencyCaps(
  redis: RedisClient,
  accountIds: readonly string[],
): Promise<ConcurrencyCapSnapshot[]> {
  const out: ConcurrencyCapSnapshot[] = [];
  for (const accountId of accountIds) {
    const classes = (await redis.smembers(accountConcurrencyClassesKey(accountId))).sort();
    for (const modelClass of classes) {
      const reply = (await SNAPSHOT.run(
        redis,
        [inFlightLeasesKey(accountId, modelClass), concurrencyKey(accountId, modelClass)],
        [],
      )) as Array<string | number>;
      const num = (v: string | number | undefined) => (v === undefined || v === '' ? null : Number(v));
      out.push({
        accountId,
        modelClass,
        inFlight: Number(reply[0]),
        learned: num(reply[1]),
        quietMs: num(reply[2]),
        probes: Number(reply[3]),
        failedProbes: Number(reply[4]),
        limited: Number(reply[5]),
      });
    }
  }
  return out;
}

function newId(): string {
  return randomBytes(8).toString('hex');
}

function abortError(): Error {
  const err = new Error('aborted while waiting for an in-flight slot');
  err.name = 'AbortError';
  return err;
}
