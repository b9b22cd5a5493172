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
  counts: { processing: number; succeeded: number; errored: number; canceled: number };
  errored_by_type: Record<string, number>;
  usage: UsageTotals;
  truncated: number;
  refused: number;
  /** Requests per model, from submit. */
  models: Record<string, number>;
  /** Canary state per model: `pending` (the rest held) or `released`. Empty with --no-canary. */
  canary: Record<string, string>;
  /** Set by `cancel`. */
  canceled_at: string | null;
  /** Bumped by each `delete` of this id: part of the job ids (see requestJobId). */
  incarnation: number;
}

export function parseBatchRecord(hash: Record<string, string>): BatchRecord | null {
  // A record being deleted (`delete` marks it first, then removes it) is gone already.
  if (!hash['id'] || hash['deleted_at']) return null;
  const int = (field: string) => Number(hash[field] ?? 0);
  const erroredByType: Record<string, number> = {};
  const canary: Record<string, string> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('err:') && Number(value) > 0) erroredByType[field.slice(4)] = Number(value);
    else if (field.startsWith('canary:')) canary[field.slice(7)] = value;
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
    },
    errored_by_type: erroredByType,
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
    incarnation: int('incarnation'),
  };
}
