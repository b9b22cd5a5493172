import { randomUUID } from 'node:crypto';
import type { RedisClient } from './connection.js';
import { LuaScript } from './lua-script.js';

/** Extends the lock if this holder holds it. KEYS: lock. ARGV: token, ttl (ms). */
const EXTEND = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);
/** Frees the lock if this holder holds it. KEYS: lock. ARGV: token. */
const FREE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * A lock that makes one process at a time do a periodic duty (the reconciler's sweep, the
 * dispatcher's rounds): a Redis string holding its holder's random token, expiring, so a holder
 * killed with -9 gives it up after `ttlMs`. Only the holder extends or frees it (checked in Lua).
 */
export class ExpiringLock {
  private readonly token = randomUUID();

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
  ) {}

  /** Takes the lock if it is free. */
  async acquire(ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.key, this.token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Extends the lock if this holder still holds it; false if it was lost (expired, taken over). */
  async extend(ttlMs: number): Promise<boolean> {
    return Number(await EXTEND.run(this.redis, [this.key], [this.token, ttlMs])) === 1;
  }

  /** Takes the lock if free, or extends it if held already: whether this holder has it now. */
  async hold(ttlMs: number): Promise<boolean> {
    return (await this.extend(ttlMs)) || this.acquire(ttlMs);
  }

  /** Frees the lock if this holder holds it. */
  async release(): Promise<void> {
    await FREE.run(this.redis, [this.key], [this.token]);
  }
}
