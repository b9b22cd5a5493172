import { BatchConflictError } from '../errors/runner-errors.js';
import type { RedisClient } from '../redis/connection.js';
import type { KeyLayout } from '../redis/keys.js';
import { parseBatchRecord, SCHEMA_VERSION, type BatchRecord, type UsageTotals } from './batch-record.js';
import { LuaScript } from '../redis/lua-script.js';
import { COMMIT_CHUNK, CREATE_BATCH, FINALIZE_REQUEST, REOPEN_REQUEST } from './scripts.js';

const createBatch = new LuaScript(CREATE_BATCH);
const commitChunk = new LuaScript(COMMIT_CHUNK);
const finalizeRequest = new LuaScript(FINALIZE_REQUEST);
const reopenRequest = new LuaScript(REOPEN_REQUEST);

export interface NewBatch {
  id: string;
  fingerprint: string;
  total: number;
  source: string;
  models: Record<string, number>;
  /** Models whose first request goes alone, the rest held until it has an outcome. */
  canaryModels?: readonly string[];
  /**
   * Fair-share weight against other batches (`--priority`): a batch of priority 2 is sent twice as
   * fast as one of priority 1 while both have requests waiting. Default: 1 when created; a resumed
   * submit given one changes it.
   */
  priority?: number | undefined;
}

export type CreateResult = {
  outcome: 'created' | 'resumed';
  submitState: string;
  /** The batch's incarnation: part of its job ids (see requestJobId). */
  incarnation: number;
};

/** How a request ended, for {@link BatchStore.finalize}. */
export interface Finalization {
  kind: 'succeeded' | 'errored' | 'canceled' | 'expired';
  /** The path that answered (issue 14): counted per path for `status`; hosted usage is priced at half. */
  path?: 'live' | 'hosted' | undefined;
  /** The exact results line. */
  line: string;
  /** API error type of an errored request. */
  errorType?: string;
  /** Runner-level condition of an errored request (counted beside its type). */
  condition?: string | null;
  usage?: Partial<UsageTotals>;
  truncated?: boolean;
  refused?: boolean;
  /** Incarnation of the job that ended (default 0): a leftover of a deleted batch writes nothing. */
  incarnation?: number;
  /** Whether this end follows an API call (for the calls counter of /metrics). */
  called?: boolean;
  /** The request's model: a success resets the model's consecutive-failure count. */
  model?: string;
  /** ms the attempt waited for the rate budget (for /metrics). */
  budgetWaitMs?: number | undefined;
  /** The API key's fingerprint: a success ends the key's run of failures (the storm breaker). */
  accountId?: string;
  /**
   * Keys that must not exist for the line to be written (answer `found` otherwise), checked in the
   * same script: the reconciler ends a request only while it is still in no place.
   */
  unlessExists?: readonly string[];
}

/** What {@link BatchStore.finalize} did: wrote it, found it already written, or found it superseded. */
export type FinalizeStatus = 'written' | 'already-written' | 'stale' | 'batch-deleted' | 'found';

const FINALIZE_STATUS: Record<number, FinalizeStatus> = {
  1: 'written',
  0: 'already-written',
  [-1]: 'stale',
  [-2]: 'batch-deleted',
  [-3]: 'found',
};

/**
 * The batch records, results and counts of one prefix. Every write is a Lua script (atomic, and
 * idempotent when repeated), so a process killed at any instant leaves the counts exact.
 */
export class BatchStore {
  constructor(
    readonly redis: RedisClient,
    readonly keys: KeyLayout,
  ) {}

  async createOrResume(batch: NewBatch, now: Date = new Date()): Promise<CreateResult> {
    const reply = (await createBatch.run(
      this.redis,
      [
        this.keys.batch(batch.id),
        this.keys.batches(),
        this.keys.schema(),
        this.keys.incarnations(),
        this.keys.epoch(),
      ],
      [
        batch.id,
        batch.fingerprint,
        batch.total,
        batch.source,
        now.getTime(),
        now.toISOString(),
        SCHEMA_VERSION,
        JSON.stringify(batch.models),
        JSON.stringify(batch.canaryModels ?? []),
        batch.priority === undefined ? '' : String(batch.priority),
      ],
    )) as [number, string, string];
    const [status, detail, incarnation] = reply;
    if (status === -1) {
      throw new BatchConflictError(
        `batch ${batch.id} already exists with different content; choose another --batch-id, or \`claude-batch delete ${batch.id}\` first`,
      );
    }
    if (status === -2) {
      throw new BatchConflictError(
        `the records under this prefix have schema version ${detail}, newer than this runner's ${SCHEMA_VERSION}: upgrade claude-batch`,
      );
    }
    if (status === -3) {
      throw new BatchConflictError(
        `a delete of batch ${batch.id} did not finish: run \`claude-batch delete ${batch.id}\` again first`,
      );
    }
    return {
      outcome: status === 1 ? 'created' : 'resumed',
      submitState: detail,
      incarnation: Number(incarnation),
    };
  }

  async enqueuedCount(id: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.batch(id), 'enqueued')) ?? 0);
  }

  /** Canary state per model (`pending`, `released`), for the models that have one. */
  async canaryStates(id: string, models: readonly string[]): Promise<Map<string, string>> {
    if (models.length === 0) return new Map();
    const states = await this.redis.hmget(this.keys.batch(id), ...models.map((m) => `canary:${m}`));
    const out = new Map<string, string>();
    models.forEach((model, i) => {
      const state = states[i];
      if (state) out.set(model, state);
    });
    return out;
  }

  async commitChunk(
    id: string,
    from: number,
    customIds: readonly string[],
    complete: boolean,
  ): Promise<number> {
    return Number(
      await commitChunk.run(
        this.redis,
        [this.keys.batch(id), this.keys.ids(id)],
        [from, from + customIds.length, complete ? 1 : 0, new Date().toISOString(), ...customIds],
      ),
    );
  }

  async finalize(
    id: string,
    customId: string,
    generation: number,
    end: Finalization,
  ): Promise<FinalizeStatus> {
    const usage = end.usage ?? {};
    const reply = await finalizeRequest.run(
      this.redis,
      [
        this.keys.batch(id),
        this.keys.results(id),
        this.keys.generations(id),
        this.keys.stats(),
        this.keys.modelFailures(),
        this.keys.storm(),
        ...(end.unlessExists ?? []),
      ],
      [
        customId,
        String(generation),
        end.kind,
        end.line,
        end.errorType ?? '',
        usage.input_tokens ?? 0,
        usage.output_tokens ?? 0,
        usage.cache_creation_input_tokens ?? 0,
        usage.cache_read_input_tokens ?? 0,
        end.truncated ? 1 : 0,
        end.refused ? 1 : 0,
        new Date().toISOString(),
        end.called ? 1 : 0,
        end.model ?? '',
        Math.round(end.budgetWaitMs ?? 0),
        end.condition ?? '',
        end.accountId ?? '',
        end.incarnation ?? 0,
        end.path ?? '',
      ],
    );
    return FINALIZE_STATUS[Number(reply)] ?? 'stale';
  }

  /**
   * Re-opens an errored request for a new generation (`dlq retry`). Returns `reopened` when the
   * caller should enqueue generation `generation + 1`.
   */
  async reopen(
    id: string,
    customId: string,
    generation: number,
    errorType: string,
    condition: string | null = null,
    incarnation = 0,
  ): Promise<'reopened' | 'stale' | 'batch-deleted'> {
    const reply = Number(
      await reopenRequest.run(
        this.redis,
        [this.keys.batch(id), this.keys.results(id), this.keys.generations(id)],
        [customId, generation, errorType, condition ?? '', incarnation],
      ),
    );
    return reply === 1 ? 'reopened' : reply === -2 ? 'batch-deleted' : 'stale';
  }

  async get(id: string): Promise<BatchRecord | null> {
    return parseBatchRecord(await this.redis.hgetall(this.keys.batch(id)));
  }

  /** Batch ids, oldest first. */
  async list(): Promise<string[]> {
    return this.redis.zrange(this.keys.batches(), 0, -1);
  }

  async resultOf(id: string, customId: string): Promise<string | null> {
    return this.redis.hget(this.keys.results(id), customId);
  }

  /** Streams the results lines: in storage order, or in input order. */
  async *results(id: string, order: 'any' | 'input' = 'any', pageSize = 1_000): AsyncGenerator<string> {
    if (order === 'any') {
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.hscan(this.keys.results(id), cursor, 'COUNT', pageSize);
        cursor = next;
        for (let i = 1; i < flat.length; i += 2) yield flat[i]!;
      } while (cursor !== '0');
      return;
    }
    for (let start = 0; ; start += pageSize) {
      const ids = await this.redis.lrange(this.keys.ids(id), start, start + pageSize - 1);
      if (ids.length === 0) return;
      const lines = await this.redis.hmget(this.keys.results(id), ...ids);
      for (const line of lines) if (line !== null) yield line;
    }
  }

  /** Counts a retry in the /metrics counters. */
  async countRetry(
    type: string,
    options: {
      budgetWaitMs?: number | undefined;
      /** The batch of a retry that may pay twice (after a timeout or a cut connection). */
      maybeBilledIn?: string | undefined;
    } = {},
  ): Promise<void> {
    const multi = this.redis
      .multi()
      .hincrby(this.keys.stats(), `retried:${type}`, 1)
      .hincrby(this.keys.stats(), 'calls', 1);
    const wait = Math.round(options.budgetWaitMs ?? 0);
    if (wait > 0) multi.hincrby(this.keys.stats(), 'budget_wait_ms', wait);
    if (options.maybeBilledIn !== undefined) {
      // HINCRBY on a deleted batch's key would create a stray record: only count while it exists.
      multi.hincrby(this.keys.stats(), 'maybe_billed', 1);
      multi.eval(
        "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 'maybe_billed', 1) end return 0",
        1,
        this.keys.batch(options.maybeBilledIn),
      );
    }
    await multi.exec();
  }

  /** The /metrics counters. */
  async stats(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.keys.stats());
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}
