import { SHARE_REASON, type HeldEntry } from '../queue/holds.js';
import { LuaScript } from '../redis/lua-script.js';
import type { Runtime } from '../runtime.js';
import type { HostedCounts } from './hosted-api.js';

/**
 * A chunk's life: `packing` (requests being moved in from the batch's share) → `packed` (its
 * size fixed) → `creating` (the intent to create it recorded: the create call may be under way) →
 * `created` (its hosted id recorded; polled) → `ended` (the API says so; results to download) →
 * `done` (every request of it has its line or is held again). `held`: it waits for an operator
 * (a create whose outcome is unknown and no single hosted batch matches it; see `held`).
 */
export type ChunkState = 'packing' | 'packed' | 'creating' | 'created' | 'ended' | 'done' | 'held';

/** One chunk: a hosted batch of some of a batch's requests. Stored as JSON in the batch's chunks hash. */
export interface ChunkMeta {
  n: number;
  state: ChunkState;
  /** Requests packed, and their size as sent (bytes, an upper bound). */
  count: number;
  bytes: number;
  /** When the intent to create it was recorded (ms), by which attempt (a random token). */
  intent_at?: number;
  intent_token?: string;
  /**
   * The custom_id of the marker request sent with it (one request of its own, max_tokens 1): its
   * line in the results proves an adopted hosted batch is this chunk's. Its line is not a result.
   */
  marker?: string;
  hosted_id?: string;
  /** Adopted after a crash rather than created by the attempt that recorded it. */
  adopted?: boolean;
  processing_status?: 'in_progress' | 'canceling' | 'ended';
  /** Its requests' counts, the marker left out (see {@link countsWithoutMarker}). */
  request_counts?: HostedCounts;
  /** The hosted batch's counts as the API reports them (the marker in). */
  hosted_counts?: HostedCounts;
  created_at?: string;
  ended_at?: string | null;
  /** A cancel was sent to the API (the batch was canceled, or `auto` moved to the live path). */
  cancel_sent?: boolean;
  /** What its download did: lines written, requests held again to be sent again. */
  written?: number;
  reheld?: number;
  /** Its worst case reserved against its batch's cost ceiling (src/hosted/chunk-ceiling.ts), until settled. */
  reservation?: { id: string; amount: number };
  /** Why it waits for an operator, the hosted batches that may be it, and the command that settles it. */
  held?: { reason: string; candidates: string[]; fix: string; since: string };
}

/** Entries moved per script while packing or holding again: each holds Redis about a millisecond. */
export const CHUNK_PAGE = 500;

/**
 * Moves up to a page of the batch's share into chunk `n` while the chunk is `packing` and the
 * batch is neither canceled nor deleted, stopping at the first entry that would not fit the
 * chunk's limits (then the chunk is full). Updates the chunk's count and bytes in the same script,
 * so a request is always in the share or in the chunk, and the chunk's figures are exact.
 * KEYS: share, chunk, chunks, batch. ARGV: n, page, max requests, max bytes.
 * Returns {moved, full (1|0), count, bytes}, or {-1} when the chunk is not packing or the batch ended.
 */
const PACK = new LuaScript(`
local meta = redis.call('HMGET', KEYS[4], 'id', 'canceled_at', 'deleted_at')
if not meta[1] or meta[2] or meta[3] then return {-1} end
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then return {-1} end
local chunk = cjson.decode(raw)
if chunk.state ~= 'packing' then return {-1} end
local maxCount, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local room = math.min(tonumber(ARGV[2]), maxCount - chunk.count)
if room <= 0 then return {0, 1, chunk.count, chunk.bytes} end
local entries = redis.call('HRANDFIELD', KEYS[1], room, 'WITHVALUES')
local moving, fields, full = {}, {}, 0
for i = 1, #entries, 2 do
  local size = #entries[i + 1] + 1
  if chunk.bytes + size > maxBytes then full = 1 break end
  chunk.bytes = chunk.bytes + size
  chunk.count = chunk.count + 1
  moving[#moving + 1] = entries[i]
  moving[#moving + 1] = entries[i + 1]
  fields[#fields + 1] = entries[i]
end
if #fields > 0 then
  redis.call('HSET', KEYS[2], unpack(moving))
  redis.call('HDEL', KEYS[1], unpack(fields))
  redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(chunk))
end
if chunk.count >= maxCount then full = 1 end
return {#fields, full, chunk.count, chunk.bytes}
`);

/**
 * Holds requests of chunk `n` again for the batch's share (to be sent again: retried, expired with
 * time left, canceled by `auto`'s move to the live path), with their job data as given: each moves
 * only if still in the chunk, so running it twice moves nothing twice. Counts them in the batch
 * record (`chunk_reheld:<n>`), so the chunk's figures hold across downloads.
 * KEYS: chunk, share, holds, share batches, batch. ARGV: batch id, share reason, chunk n, job id,
 * data, ...
 * Returns how many moved.
 */
const REHOLD = new LuaScript(`
local moved = 0
for i = 4, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('HDEL', KEYS[1], ARGV[i])
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[1])
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HINCRBY', KEYS[5], 'chunk_reheld:' .. ARGV[3], moved) end
end
return moved
`);

/**
 * Replaces a chunk's record if it is in the expected state ('' = whatever it is, only if it
 * exists; '-' = only if it does not exist yet). KEYS: chunks. ARGV: n, expected state, JSON.
 * Returns 1 replaced, 0 not.
 */
const UPDATE = new LuaScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '-' then
  if raw then return 0 end
else
  if not raw then return 0 end
  if ARGV[2] ~= '' and cjson.decode(raw).state ~= ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`);

/**
 * The chunks of one prefix's batches (issue 14): the requests a hosted batch holds are entries of
 * their chunk's hash (job id → job data, the shape every hold has, see `Holds`), which is one of
 * the lawful places of a request (src/worker/request-places.ts); they move there from the batch's
 * share, and out of it to their result line or back to the share, each move one script or an
 * idempotent write followed by the removal.
 */
export class Chunks {
  constructor(private readonly runtime: Runtime) {}

  /** Every chunk of the batch, by number. */
  async all(batchId: string): Promise<ChunkMeta[]> {
    const raw = await this.runtime.redis.hvals(this.runtime.keys.chunks(batchId));
    return raw.map((json) => JSON.parse(json) as ChunkMeta).sort((a, b) => a.n - b.n);
  }

  async get(batchId: string, n: number): Promise<ChunkMeta | null> {
    const raw = await this.runtime.redis.hget(this.runtime.keys.chunks(batchId), String(n));
    return raw ? (JSON.parse(raw) as ChunkMeta) : null;
  }

  /** Starts a new chunk (packing), numbered after the batch's last. */
  async open(batchId: string): Promise<ChunkMeta> {
    const { redis, keys } = this.runtime;
    const n = await redis.hincrby(keys.batch(batchId), 'chunk_seq', 1);
    const meta: ChunkMeta = { n, state: 'packing', count: 0, bytes: 0 };
    await this.update(batchId, meta, '-');
    return meta;
  }

  /** Replaces the chunk's record if it is in state `expected` (see UPDATE). */
  async update(batchId: string, meta: ChunkMeta, expected: ChunkState | '' | '-'): Promise<boolean> {
    return (
      Number(
        await UPDATE.run(
          this.runtime.redis,
          [this.runtime.keys.chunks(batchId)],
          [meta.n, expected, JSON.stringify(meta)],
        ),
      ) === 1
    );
  }

  /** Packs one page of the share into the chunk. Null when it is not packing or the batch ended. */
  async packPage(
    batchId: string,
    n: number,
    limits: { maxRequests: number; maxBytes: number },
  ): Promise<{ moved: number; full: boolean; count: number; bytes: number } | null> {
    const { redis, keys } = this.runtime;
    const reply = (await PACK.run(
      redis,
      [keys.held(batchId, SHARE_REASON), keys.chunk(batchId, n), keys.chunks(batchId), keys.batch(batchId)],
      [n, CHUNK_PAGE, limits.maxRequests, limits.maxBytes],
    )) as number[];
    if (Number(reply[0]) < 0) return null;
    return {
      moved: Number(reply[0]),
      full: Number(reply[1]) === 1,
      count: Number(reply[2]),
      bytes: Number(reply[3]),
    };
  }

  /** The requests of a chunk, page by page (HSCAN: each entry at least once, in no order). */
  async *entries(batchId: string, n: number): AsyncGenerator<HeldEntry[]> {
    let cursor = '0';
    do {
      const [next, flat] = await this.runtime.redis.hscan(
        this.runtime.keys.chunk(batchId, n),
        cursor,
        'COUNT',
        CHUNK_PAGE,
      );
      cursor = next;
      const page: HeldEntry[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) page.push([flat[i]!, flat[i + 1]!]);
      if (page.length > 0) yield page;
    } while (cursor !== '0');
  }

  /** Job data of these requests if still in the chunk (null where not). */
  async dataOf(batchId: string, n: number, jobIds: readonly string[]): Promise<Array<string | null>> {
    if (jobIds.length === 0) return [];
    return this.runtime.redis.hmget(this.runtime.keys.chunk(batchId, n), ...jobIds);
  }

  /** Removes requests from the chunk once their result line is written. */
  async drop(batchId: string, n: number, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await this.runtime.redis.hdel(this.runtime.keys.chunk(batchId, n), ...jobIds);
  }

  /** Holds requests of the chunk again for the batch's share, with the data given. Returns how many moved. */
  async rehold(batchId: string, n: number, entries: readonly HeldEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const { redis, keys } = this.runtime;
    let moved = 0;
    for (let i = 0; i < entries.length; i += CHUNK_PAGE) {
      moved += Number(
        await REHOLD.run(
          redis,
          [
            keys.chunk(batchId, n),
            keys.held(batchId, SHARE_REASON),
            keys.holds(batchId),
            keys.shareBatches(),
            keys.batch(batchId),
          ],
          [batchId, SHARE_REASON, n, ...entries.slice(i, i + CHUNK_PAGE).flat()],
        ),
      );
    }
    return moved;
  }

  /** Requests of the chunk held again so far (every download of it). */
  async reheldCount(batchId: string, n: number): Promise<number> {
    return Number(
      (await this.runtime.redis.hget(this.runtime.keys.batch(batchId), `chunk_reheld:${n}`)) ?? 0,
    );
  }

  /** Requests still in the chunk. */
  async size(batchId: string, n: number): Promise<number> {
    return this.runtime.redis.hlen(this.runtime.keys.chunk(batchId, n));
  }

  /**
   * Numbers of the batch's chunks that may hold requests, for the places registry: those not
   * `done`, and the next two to be opened, since a chunk opened after this read may take requests
   * from the share before the registry probes them (probing a hash that does not exist is free).
   */
  async openNumbers(batchId: string): Promise<number[]> {
    const [chunks, seq] = await Promise.all([
      this.all(batchId),
      this.runtime.redis.hget(this.runtime.keys.batch(batchId), 'chunk_seq'),
    ]);
    const last = Number(seq ?? 0);
    return [...chunks.filter((c) => c.state !== 'done').map((c) => c.n), last + 1, last + 2];
  }

  /**
   * Requests in the chunks of every batch with hosted work: `pending` in those the runner is moving
   * along, `held` in those waiting for an operator (`hosted settle`).
   */
  async everywhere(): Promise<{ pending: number; held: number }> {
    const { redis, keys } = this.runtime;
    const out = { pending: 0, held: 0 };
    for (const id of await redis.smembers(keys.hostedBatches())) {
      for (const chunk of await this.all(id)) {
        if (chunk.state === 'done') continue;
        out[chunk.state === 'held' ? 'held' : 'pending'] += await this.size(id, chunk.n);
      }
    }
    return out;
  }
}

/**
 * The counts of a chunk's own requests from its hosted batch's, which include the marker: while it
 * runs every request counts as `processing` (the API's documented behaviour), so the marker is
 * one of those; once its line has been read its type is known; until then it is taken from the
 * first of processing, succeeded, errored, canceled, expired that holds one (it is the smallest
 * request of the batch, and shares its fate).
 */
export function countsWithoutMarker(
  counts: HostedCounts,
  marker: keyof HostedCounts | null | 'none',
): HostedCounts {
  if (marker === 'none') return { ...counts };
  const order: Array<keyof HostedCounts> = ['processing', 'succeeded', 'errored', 'canceled', 'expired'];
  const from = marker ?? order.find((k) => counts[k] > 0);
  const out = { ...counts };
  if (from && out[from] > 0) out[from] -= 1;
  return out;
}
