/**
 * Every Redis key the runner writes, in one place. All of them start with the hash-tagged prefix,
 * so multi-key scripts stay in one Redis Cluster slot and `delete`/tests can find them all.
 */
export class KeyLayout {
  /** BullMQ's own prefix: its keys are `${bullPrefix}:${queueName}:...`. */
  readonly bullPrefix: string;
  private readonly base: string;

  constructor(prefix: string) {
    this.bullPrefix = normalizePrefix(prefix);
    this.base = `${this.bullPrefix}:cb`;
  }

  /** Schema version of the runner's own records. */
  schema(): string {
    return `${this.base}:schema`;
  }

  /** Sorted set of batch ids, scored by creation time (ms). */
  batches(): string {
    return `${this.base}:batches`;
  }

  /** Hash: the batch record (meta, counts, usage, errors by type). */
  batch(id: string): string {
    return `${this.base}:batch:${id}`;
  }

  /** Hash: custom_id → result line JSON. The durable results store. */
  results(id: string): string {
    return `${this.base}:batch:${id}:results`;
  }

  /** List: custom_ids in input order (for `--order input`, cancel and delete). */
  ids(id: string): string {
    return `${this.base}:batch:${id}:ids`;
  }

  /** Hash: custom_id → generation, for requests sent again by `dlq retry`. */
  generations(id: string): string {
    return `${this.base}:batch:${id}:gen`;
  }

  /** Set: the reasons (e.g. `canary:<model>`) for which some of the batch's requests are held. */
  holds(id: string): string {
    return `${this.base}:batch:${id}:holds`;
  }

  /**
   * Hash: job id → job data (JSON) of the batch's requests held for one reason, until that reason
   * is released (see `Holds`): a held request is not yet a BullMQ job.
   */
  held(id: string, reason: string): string {
    return `${this.base}:batch:${id}:held:${reason}`;
  }

  /**
   * Hash: job id → job data of the batch's requests the dispatcher took from its share and is
   * adding to the queue; left non-empty only by a dispatcher that died or failed midway.
   */
  dispatching(id: string): string {
    return `${this.base}:batch:${id}:dispatching`;
  }

  /**
   * Set: ids of the batches with requests held for their fair share (`held(id, 'share')`), which
   * the dispatcher hands out round-robin (see `Dispatcher`). A batch enters when requests are
   * recorded for its share and leaves once it holds none.
   */
  shareBatches(): string {
    return `${this.base}:share:batches`;
  }

  /**
   * Sorted set: the batch's cost reservations in flight (issue 15), member `<nano-USD>:<id>`,
   * scored by when its lease expires (ms, Redis time). See src/limits/cost-ledger.ts; the ceiling
   * and the settled and reserved totals live in the batch record (`max_cost`, `cost_spent`,
   * `cost_reserved`), which the same scripts touch (one slot).
   */
  costLeases(id: string): string {
    return `${this.base}:batch:${id}:cost-leases`;
  }

  /**
   * Set: ids of the batches paused on their own (a `pause:<reason>` field in their record, e.g.
   * `pause:cost_ceiling`), which the dispatcher does not dispatch; `resume BATCH` lifts them.
   */
  pausedBatches(): string {
    return `${this.base}:paused-batches`;
  }

  /**
   * Set: ids of the batches whose share goes to the hosted Message Batches API (issue 14: `--via
   * batches`, or `auto` while its deadline leaves room): the dispatcher leaves them to the hosted
   * runner (src/hosted/hosted-runner.ts), which packs their share into hosted batches.
   */
  hostedBatches(): string {
    return `${this.base}:hosted:batches`;
  }

  /**
   * Hash: chunk number → JSON of one hosted batch of this batch's requests (its state, size, the
   * intent to create it, its hosted id and counts): see src/hosted/chunks.ts.
   */
  chunks(id: string): string {
    return `${this.base}:batch:${id}:chunks`;
  }

  /**
   * Hash: job id → job data of the requests packed into chunk `n` of the batch: their place while
   * the hosted API has them, from packing until their result line is written or they are held again.
   */
  chunk(id: string, n: number): string {
    return `${this.base}:batch:${id}:chunk:${n}`;
  }

  /** String: the lock of the one process that packs, creates, polls and downloads a batch's chunks. */
  hostedLock(id: string): string {
    return `${this.base}:hosted:lock:${id}`;
  }

  /**
   * Hash: hosted batch id → `<batch>:<chunk>`: every hosted batch this prefix created or adopted,
   * so an adoption after a crash never takes one that another chunk owns.
   */
  hostedIds(): string {
    return `${this.base}:hosted:ids`;
  }

  /**
   * Hash: hosted batch id → JSON {batch, since}: hosted batches of deleted batches, which the
   * hosted runner cancels, waits for and deletes at the API (it deletes only ended batches).
   */
  hostedTrash(): string {
    return `${this.base}:hosted:trash`;
  }

  /** String: the dispatcher's lock (its holder's id), expiring, so one worker at a time dispatches. */
  dispatcherLock(): string {
    return `${this.base}:share:lock`;
  }

  /**
   * Hash: batch id → JSON of its recent dispatch (weight, rate per second, share of all
   * dispatched, when), written by the dispatcher every second, for `status`.
   */
  shareState(): string {
    return `${this.base}:share:state`;
  }

  /** String: the reconciler's lock (its holder's id), expiring, so one worker at a time sweeps. */
  reconcilerLock(): string {
    return `${this.base}:reconciler:lock`;
  }

  /** Hash: the reconciler's last run (when, batches looked at, repairs) for `status`. */
  reconcilerState(): string {
    return `${this.base}:reconciler:state`;
  }

  /** Hash: batch id → its progress signature and since when (ms) it has not changed. */
  reconcilerSeen(): string {
    return `${this.base}:reconciler:seen`;
  }

  /**
   * Counter bumped by every change of what may be sent (cancel, delete, pause, resume, breakers):
   * a worker re-reads its gates when the value it sees differs from the one it cached.
   */
  epoch(): string {
    return `${this.base}:epoch`;
  }

  /**
   * Hash: batch id → incarnation, bumped by `delete` and kept after it, so a batch submitted again
   * under the same id gets job ids of its own and leftovers of the deleted one are told apart.
   */
  incarnations(): string {
    return `${this.base}:incarnations`;
  }

  /** Hash: the key-wide breaker, set while it holds the queue paused (type, reason, since, ...). */
  keyBreaker(): string {
    return `${this.base}:breaker:key`;
  }

  /** Hash: model → JSON of its open model breaker. */
  modelBreakers(): string {
    return `${this.base}:breaker:models`;
  }

  /** Hash: model → consecutive model-wide failures (reset by a success). */
  modelFailures(): string {
    return `${this.base}:breaker:model-failures`;
  }

  /**
   * Hash: the failure-storm count per API key fingerprint: `<fp>:sig` (the signature of the last
   * terminal failure), `<fp>:count` (how many in a row), `<fp>:tripped` (the signature that last
   * tripped the breaker, for `dlq retry --type storm`). A success of the key resets the count.
   */
  storm(): string {
    return `${this.base}:storm`;
  }

  /**
   * Set: fingerprints ({@link Secret.fingerprint}) of the API keys whose workers ran under this
   * prefix, so commands run without the key (`status`, `resume`, `dlq retry`) find the key-level
   * records ({@link accountBreakerKey}) that concern this prefix.
   */
  accounts(): string {
    return `${this.base}:accounts`;
  }

  /**
   * Hash: per worker process (`host:pid:id`), its in-flight sizing as JSON (the cap in force, its
   * ceiling, what limits it, the recent latency, when it said so), written every second; `status`
   * and /metrics show the workers that reported in the last 10 s.
   */
  workerSizes(): string {
    return `${this.base}:workers`;
  }

  /** Hash: counters for /metrics (outcomes and retries by type, calls). */
  stats(): string {
    return `${this.base}:stats`;
  }

  /** Pattern matching every key of the runner and of BullMQ under this prefix. */
  everything(): string {
    return `${this.bullPrefix}:*`;
  }
}

/**
 * Key-level records: what belongs to the API key rather than to one queue prefix. Each under its
 * own hash tag `{cb-key-<fp>}` (fp = the key's fingerprint, never the key), so a Redis Cluster keeps
 * them in one slot and no script touches two slots; a prefix's own keys live in another slot, so
 * the code that joins both issues separate commands.
 */
const ACCOUNT_KEY_PREFIX = 'cb-key-';

/**
 * Hash: the key-wide breaker of the API key (the fields of the prefix-level one, plus `trip`, an
 * id of this trip, and `prefix`, where it was seen first). Present while the key is tripped; every
 * prefix in {@link accountPrefixesKey} holds a copy and is paused.
 */
export function accountBreakerKey(accountId: string): string {
  return `{${ACCOUNT_KEY_PREFIX}${checkAccountId(accountId)}}:breaker`;
}

/** Set: the BullMQ prefixes whose workers use the API key: a trip pauses each, a fix resumes each. */
export function accountPrefixesKey(accountId: string): string {
  return `{${ACCOUNT_KEY_PREFIX}${checkAccountId(accountId)}}:prefixes`;
}

/**
 * Set: the model classes (names as configured) for which a concurrency limit was learned under the
 * key, so `status` and `/metrics`, run without the key's classes, find their state.
 */
export function accountConcurrencyClassesKey(accountId: string): string {
  return `{${ACCOUNT_KEY_PREFIX}${checkAccountId(accountId)}}:concurrency-classes`;
}

function checkAccountId(accountId: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(accountId)) {
    throw new Error(
      `account id must match [A-Za-z0-9_.-]{1,64} (a key fingerprint), got ${accountId.length} characters`,
    );
  }
  return accountId;
}

/**
 * Wraps a prefix in a Redis Cluster hash tag unless it already has one, so every key of a
 * deployment lands in one slot (BullMQ's and ours alike).
 */
export function normalizePrefix(prefix: string): string {
  if (prefix.length === 0) throw new Error('prefix must not be empty');
  if (prefix.includes(':')) throw new Error(`prefix must not contain ':' (got ${JSON.stringify(prefix)})`);
  if (hashTag(prefix) !== null) return prefix;
  // Braces that form no tag by Redis's rule (`{}x`, `x}{`) would be read differently by a reader
  // of the key than by Redis Cluster: refuse them rather than guess.
  if (/[{}]/.test(prefix)) {
    throw new Error(
      `prefix has braces but no Redis Cluster hash tag (the first '{' must be followed by a non-empty tag and '}'): got ${JSON.stringify(prefix)}`,
    );
  }
  return `{${prefix}}`;
}

/**
 * The hash tag Redis Cluster hashes a key by, by its own rule: the text between the FIRST '{' and
 * the first '}' after it, when that is non-empty; null when the key has none (then the whole key
 * is hashed). A prefix with a tag puts every key that starts with it in one slot.
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}
