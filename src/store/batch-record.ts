/** Version of the runner's own record layout under a prefix; bumped with a migration. */
export const SCHEMA_VERSION = 1;

/** Token usage totals of a batch, as the API reports them. */
export interface UsageTotals {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** A batch as stored: meta, counts, errors by type and usage. Read with one HGETALL. */
export interface BatchRecord {
  id: string;
  source: string;
  fingerprint: string;
  created_at: string;
  ended_at: string | null;
  total: number;
  enqueued: number;
  submit_state: 'submitting' | 'submitted';
  counts: { processing: number; succeeded: number; errored: number; canceled: number; expired: number };
  errored_by_type: Record<string, number>;
  /**
   * How its requests are sent (issue 14, src/hosted/route.ts): `via` as submitted, the path its share
   * goes to now (`route`: an `auto` batch moves to `live` when its deadline comes close), the
   * deadline (ms, or null), and how many requests each path answered (succeeded or errored).
   */
  via: 'live' | 'batches' | 'auto';
  route: 'live' | 'hosted';
  deadline: number | null;
  /** When an `auto` batch moved to the live path (RFC 3339; the runner sets it with `route`), or null. */
  switched_at: string | null;
  served: { live: number; hosted: number };
  /** Usage of the requests answered by the hosted API (priced at half), also counted in `usage`. */
  usage_hosted: UsageTotals;
  /** Errored requests by runner-level condition (billing, auth, spend_cap, model). */
  errored_by_condition: Record<string, number>;
  usage: UsageTotals;
  truncated: number;
  refused: number;
  /** Requests per model, from submit. */
  models: Record<string, number>;
  /** Canary state per model: `pending` (the rest held) or `released`. Empty with --no-canary. */
  canary: Record<string, string>;
  /** Set by `cancel`. */
  canceled_at: string | null;
  /**
   * Retries that may have paid twice: sent again after a timeout or a cut connection, when the
   * first try may have been processed and billed (the API has no idempotency key).
   */
  maybe_billed: number;
  /** When the reconciler last repaired something in this batch, and what (kind → requests). */
  reconciled_at: string | null;
  repaired: Record<string, number>;
  /** Bumped by each `delete` of this id: part of the job ids (see requestJobId). */
  incarnation: number;
  /** Fair-share weight against other batches (`--priority`, default 1). */
  priority: number;
  /**
   * Its cost ledger (issue 15, src/limits/cost-ledger.ts), in nano-dollars: the ceiling (null:
   * none), settled spend and reservations in flight. Null when the batch never had a ceiling.
   */
  cost: { ceiling: number | null; spent: number; reserved: number } | null;
  /** Its own pauses by reason (`cost_ceiling`), each the JSON its `pause:<reason>` field holds. */
  pauses: Record<string, Record<string, unknown>>;
  /** The prices frozen at submit (JSON, src/pricing/request-cost.ts `parseFrozenPrices`), or null. */
  prices_json: string | null;
  /** The prefix TTL auto-caching marked (src/queue/rewarm.ts), or null when it marked none. */
  auto_cache_ttl: '5m' | '1h' | null;
}

export function parseBatchRecord(hash: Record<string, string>): BatchRecord | null {
  // A record being deleted (`delete` marks it first, then removes it) is gone already.
  if (!hash['id'] || hash['deleted_at']) return null;
  const int = (field: string) => Number(hash[field] ?? 0);
  const erroredByType: Record<string, number> = {};
  const erroredByCondition: Record<string, number> = {};
  const canary: Record<string, string> = {};
  const repaired: Record<string, number> = {};
  const pauses: Record<string, Record<string, unknown>> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('err:') && Number(value) > 0) erroredByType[field.slice(4)] = Number(value);
    else if (field.startsWith('cond:') && Number(value) > 0)
      erroredByCondition[field.slice(5)] = Number(value);
    else if (field.startsWith('canary:')) canary[field.slice(7)] = value;
    else if (field.startsWith('repaired:')) repaired[field.slice(9)] = Number(value);
    else if (field.startsWith('pause:')) {
      try {
        pauses[field.slice(6)] = JSON.parse(value) as Record<string, unknown>;
      } catch {
        // A damaged record still says the batch is paused, and why.
        pauses[field.slice(6)] = { reason: field.slice(6) };
      }
    }
  }
  let models: Record<string, number>;
  try {
    models = JSON.parse(hash['models'] ?? '{}') as Record<string, number>;
  } catch {
    // A record written by hand or damaged: the counts still stand without the model breakdown.
    models = {};
  }
  return {
    id: hash['id'],
    source: hash['source'] ?? '',
    fingerprint: hash['fingerprint'] ?? '',
    created_at: hash['created_at'] ?? '',
    ended_at: hash['ended_at'] || null,
    total: int('total'),
    enqueued: int('enqueued'),
    submit_state: hash['submit_state'] === 'submitted' ? 'submitted' : 'submitting',
    counts: {
      processing: int('processing'),
      succeeded: int('succeeded'),
      errored: int('errored'),
      canceled: int('canceled'),
      expired: int('expired'),
    },
    errored_by_type: erroredByType,
    via: hash['via'] === 'batches' || hash['via'] === 'auto' ? hash['via'] : 'live',
    route: hash['route'] === 'hosted' ? 'hosted' : 'live',
    deadline: hash['deadline'] ? Number(hash['deadline']) : null,
    switched_at: hash['switched_at'] || null,
    served: { live: int('served:live'), hosted: int('served:hosted') },
    usage_hosted: {
      input_tokens: int('hosted:input_tokens'),
      output_tokens: int('hosted:output_tokens'),
      cache_creation_input_tokens: int('hosted:cache_creation_input_tokens'),
      cache_read_input_tokens: int('hosted:cache_read_input_tokens'),
    },
    errored_by_condition: erroredByCondition,
    usage: {
      input_tokens: int('input_tokens'),
      output_tokens: int('output_tokens'),
      cache_creation_input_tokens: int('cache_creation_input_tokens'),
      cache_read_input_tokens: int('cache_read_input_tokens'),
    },
    truncated: int('truncated'),
    refused: int('refused'),
    models,
    canary,
    canceled_at: hash['canceled_at'] || null,
    maybe_billed: int('maybe_billed'),
    reconciled_at: hash['reconciled_at'] || null,
    repaired,
    incarnation: int('incarnation'),
    priority: parsePriority(hash['priority']),
    cost:
      hash['max_cost'] !== undefined || hash['cost_spent'] !== undefined
        ? {
            ceiling: hash['max_cost'] ? Number(hash['max_cost']) : null,
            spent: int('cost_spent'),
            reserved: int('cost_reserved'),
          }
        : null,
    pauses,
    prices_json: hash['prices'] ?? null,
    auto_cache_ttl: autoCacheTtl(hash['auto_cache']),
  };
}

function autoCacheTtl(json: string | undefined): '5m' | '1h' | null {
  if (json === undefined) return null;
  try {
    return (JSON.parse(json) as { ttl?: unknown }).ttl === '1h' ? '1h' : '5m';
  } catch {
    return null;
  }
}

/** The most a batch's fair-share weight may be (`--priority`). */
export const MAX_PRIORITY = 1_000;

/** A stored priority as a weight: 1 when absent (records older than fair share) or unreadable. */
export function parsePriority(value: string | null | undefined): number {
  const n = Number(value ?? 1);
  return Number.isInteger(n) && n >= 1 && n <= MAX_PRIORITY ? n : 1;
}
