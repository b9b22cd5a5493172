import { CONDITION_SUMMARY, fixFor, isCondition } from '../errors/error-table.js';
import type { InFlightLimiter } from '../worker/concurrency-sizer.js';
import type { BudgetDimensionSnapshot, BudgetSnapshot } from '../limits/index.js';
import type { BatchStatus } from '../operations/batch-status.js';

/** What limits the workers' requests in flight, in the operator's words. */
const LIMITER_WORDS: Readonly<Record<InFlightLimiter, string>> = {
  budget: 'the rate budget is what limits (all it admits is in flight)',
  api_concurrency: "the API's concurrency limit is what limits",
  concurrency: 'ramping up (every slot busy, the budget has room)',
  ceiling: 'at --concurrency: raise it to send more at once',
  idle: 'not busy',
};

const nf = new Intl.NumberFormat('en-US');

/** Chunk lines shown at most; `status --json` lists every one. */
const MAX_CHUNK_LINES = 50;

/**
 * The path a batch takes (issue 14): how it was submitted, where it is now, its deadline and
 * what each path answered, then one line per hosted batch. Nothing for a live batch (today's
 * output), unless part of it was answered by the hosted API.
 */
function pathLines(status: BatchStatus, now: number): string[] {
  if (status.via === 'live' && status.hosted === null && status.served.hosted === 0) return [];
  const lines: string[] = [];
  const path =
    status.via === 'auto'
      ? status.route === 'live'
        ? `via auto → live${status.switched_at ? ` since ${status.switched_at}` : ''} (the deadline left no room for the hosted path)`
        : 'via auto (hosted while the deadline leaves room to finish live)'
      : status.via === 'batches'
        ? 'via batches (the hosted Message Batches API, half price)'
        : `via ${status.via}`;
  lines.push(`  path        ${path}`);
  if (status.deadline) {
    const left = (Date.parse(status.deadline) - now) / 1_000;
    lines.push(
      `  deadline    ${status.deadline} (${left >= 0 ? `${formatDuration(left)} left` : `passed ${formatDuration(-left)} ago`})`,
    );
  }
  lines.push(
    `  answered    ${nf.format(status.served.live)} live, ${nf.format(status.served.hosted)} hosted`,
  );
  const chunks = status.hosted?.batches ?? [];
  for (const [i, c] of chunks.slice(0, MAX_CHUNK_LINES).entries()) {
    lines.push(`  ${i === 0 ? 'hosted     ' : '           '} ${formatChunk(c)}`);
  }
  if (chunks.length > MAX_CHUNK_LINES) {
    lines.push(
      `              ... and ${chunks.length - MAX_CHUNK_LINES} more (status --json lists them all)`,
    );
  }
  return lines;
}

type HostedChunk = NonNullable<BatchStatus['hosted']>['batches'][number];

/** One hosted batch: its id, the API's processing status and counts (or where the chunk is before that). */
function formatChunk(c: HostedChunk): string {
  const head = `chunk ${c.chunk}  ${c.hosted_id ?? '(no hosted id yet)'}`;
  const requests = `${nf.format(c.requests)} requests`;
  if (c.state === 'held') return `${head}  HELD for an operator: ${requests} (see PAUSED)`;
  if (c.processing_status === null) return `${head}  ${c.state}: ${requests}`;
  const k = c.request_counts;
  const counts = k
    ? c.processing_status === 'ended'
      ? `${nf.format(k.succeeded)} succeeded, ${nf.format(k.errored)} errored, ${nf.format(k.canceled)} canceled, ${nf.format(k.expired)} expired`
      : `${nf.format(k.processing)} processing`
    : '';
  const local = c.state === 'ended' ? ' (results downloading)' : c.state === 'done' ? ' (results in)' : '';
  return `${head}  ${c.processing_status}${local}: ${requests}${counts ? `; ${counts}` : ''}`;
}

/** One batch in detail: counts, errors by type with the fix for each, usage. */
export function formatBatchStatus(status: BatchStatus, now = Date.now()): string {
  const c = status.request_counts;
  const done = c.succeeded + c.errored + c.canceled + c.expired;
  const pct = status.total > 0 ? Math.floor((done / status.total) * 100) : 100;
  const lines = [
    `batch ${status.id}  ${status.processing_status}${status.submit_state === 'submitting' ? ' (submit not finished: run submit again to resume)' : ''}`,
    `  source      ${status.source}`,
    `  requests    ${status.total} total: ${c.succeeded} succeeded, ${c.errored} errored, ${c.canceled} canceled, ${c.processing} processing${c.expired > 0 ? `, ${c.expired} expired` : ''} (${pct}% done)`,
    ...pathLines(status, now),
    `  usage       ${status.usage.input_tokens} input, ${status.usage.output_tokens} output, ${status.usage.cache_creation_input_tokens} cache write, ${status.usage.cache_read_input_tokens} cache read tokens`,
  ];
  const estimate = status.estimated_cost;
  if (estimate.usd !== null && estimate.usd > 0) {
    lines.push(
      `  estimate    ~$${estimate.usd.toFixed(4)} at the prices frozen at submit` +
        (estimate.hosted_usd ? `; of which hosted at half price: $${estimate.hosted_usd.toFixed(4)}` : '') +
        (estimate.exact ? '' : ' (mixed models: rates averaged by requests)'),
    );
  }
  if (status.cache) {
    const { read_share: share, saved_usd: saved } = status.cache;
    lines.push(
      `  cache       ${Math.round(share * 100)}% of prompt tokens read from the cache` +
        (saved === null
          ? ''
          : saved >= 0
            ? `; saved $${saved.toFixed(4)}`
            : `; cost $${(-saved).toFixed(4)} more`),
    );
  }
  if (status.cost) {
    const k = status.cost;
    lines.push(
      `  cost        $${k.spent_usd.toFixed(4)} spent` +
        (k.reserved_usd > 0 ? `, $${k.reserved_usd.toFixed(4)} reserved in flight` : '') +
        (k.ceiling_usd === null
          ? ', no ceiling'
          : ` of a $${k.ceiling_usd} ceiling (${Math.floor((k.spent_usd / k.ceiling_usd) * 100)}%)`),
    );
  }
  for (const p of status.paused) {
    if (p.scope === 'batch' && p.reason === 'hosted_chunk_held') {
      lines.push(
        `  PAUSED      hosted chunk ${p.chunk} held for an operator${p.since ? ` since ${p.since}` : ''}`,
      );
      lines.push(`              ${p.message}`);
      if (p.candidates.length > 0) lines.push(`              candidates: ${p.candidates.join(', ')}`);
    } else if (p.scope === 'batch') {
      lines.push(
        `  PAUSED      this batch, at its cost ceiling: $${p.spent_usd.toFixed(4)} spent of $${p.ceiling_usd}${p.since ? ` since ${p.since}` : ''}`,
      );
      lines.push(`              ${p.message}`);
    } else {
      lines.push(
        `  PAUSED      ${p.reason === 'manual' ? 'by hand' : `${p.condition ? `${CONDITION_SUMMARY[p.condition]}: ` : ''}key-wide breaker on ${p.type}${p.error_code ? ` (${p.error_code})` : ''}`}${p.since ? ` since ${p.since}` : ''}`,
      );
      if (p.message)
        lines.push(`              ${p.message}${p.request_id ? ` (request ${p.request_id})` : ''}`);
    }
    lines.push(`              fix: ${p.fix}`);
  }
  const pendingCanaries = Object.entries(status.canary).filter(([, state]) => state === 'pending');
  if (pendingCanaries.length > 0 && status.processing_status !== 'ended') {
    lines.push(
      `  canary      waiting for the first request of ${pendingCanaries.map(([m]) => m).join(', ')}`,
    );
  }
  if (status.fair_share) {
    const f = status.fair_share;
    lines.push(
      `  share       ${Math.round(f.share * 100)}% of what is sent now (priority ${status.priority}), ` +
        `${f.rate_per_s.toFixed(1)} requests/s, ${f.waiting} waiting for a turn` +
        `${f.eta_s === null ? '' : `, ETA ${formatDuration(f.eta_s)}`}`,
    );
  } else if (status.priority !== 1 && status.processing_status !== 'ended') {
    lines.push(`  share       priority ${status.priority}`);
  }
  if (status.workers.length > 0 && status.processing_status !== 'ended') {
    const cap = status.workers.reduce((n, w) => n + w.concurrency, 0);
    const ceiling = status.workers.reduce((n, w) => n + w.ceiling, 0);
    const latencies = status.workers.map((w) => w.latency_ms).filter((l): l is number => l !== null);
    const latency =
      latencies.length > 0
        ? `, latency ~${(latencies.reduce((a, b) => a + b, 0) / latencies.length / 1000).toFixed(1)} s`
        : '';
    const limits = [...new Set(status.workers.map((w) => LIMITER_WORDS[w.limited_by]))].join('; ');
    lines.push(
      `  workers     ${status.workers.length} taking up to ${cap} requests at once (ceiling ${ceiling}${latency}): ${limits}`,
    );
  }
  for (const cap of status.concurrency_caps) {
    if (cap.learned === null) continue;
    lines.push(
      `  in flight   at most ${cap.learned} of class ${cap.class} at once (learned from ${cap.limited} concurrency 429s; ` +
        `${cap.in_flight} in flight now; ${cap.probes} probes upward, ${cap.failed_probes} put back)`,
    );
  }
  if (status.maybe_billed > 0) {
    lines.push(
      `  maybe paid  ${status.maybe_billed} retries after a timeout or cut connection (each may have been billed twice; --max-maybe-billed caps them)`,
    );
  }
  if (status.truncated > 0 || status.refused > 0) {
    lines.push(`  replies     ${status.truncated} cut at max_tokens, ${status.refused} refused`);
  }
  const errors = Object.entries(status.errored_by_type).sort((a, b) => b[1] - a[1]);
  if (errors.length > 0) {
    lines.push('  errors by type:');
    for (const [type, count] of errors) {
      lines.push(`    ${String(count).padStart(7)}  ${type}  → ${fixFor(type)}`);
    }
  }
  const conditions = Object.entries(status.errored_by_condition)
    .filter((entry): entry is [keyof typeof CONDITION_SUMMARY, number] => isCondition(entry[0]))
    .sort((a, b) => b[1] - a[1]);
  if (conditions.length > 0) {
    // The same requests as above, by what the runner made of them: a credit refusal sent as a 400
    // invalid_request_error is counted under its type and, here, as billing.
    lines.push('  errors by condition:');
    for (const [condition, count] of conditions) {
      lines.push(
        `    ${String(count).padStart(7)}  ${CONDITION_SUMMARY[condition]} (${condition})  → ${fixFor('', condition)}`,
      );
    }
  }
  const repaired = Object.entries(status.reconciler.repaired).filter(([, n]) => n > 0);
  if (repaired.length > 0) {
    lines.push(
      `  reconciler  repaired ${repaired.map(([kind, n]) => `${n} ${kind.replace(/_/g, ' ')}`).join(', ')}` +
        `${status.reconciler.repaired_at ? ` (last ${status.reconciler.repaired_at})` : ''}`,
    );
    if (status.reconciler.repaired['lost']) {
      lines.push(
        '              lost: their jobs were removed (Bull Board or Redis) before they had an outcome; submit them again in a new batch',
      );
    }
  }
  if (status.processing_status !== 'ended') {
    lines.push(
      `  reconciler  last ran ${status.reconciler.last_run_at ?? 'never under this prefix (no worker has run it)'}`,
    );
  }
  lines.push(`  created     ${status.created_at}${status.ended_at ? `   ended ${status.ended_at}` : ''}`);
  return lines.join('\n');
}

/** Every batch, one row each. */
export function formatBatchTable(statuses: readonly BatchStatus[]): string {
  if (statuses.length === 0) return 'no batches';
  const header = [
    'BATCH',
    'STATUS',
    'TOTAL',
    'SUCCEEDED',
    'ERRORED',
    'CANCELED',
    'PROCESSING',
    'VIA',
    'PRIORITY',
    'SHARE',
    'ETA',
    'COST',
    'CREATED',
  ];
  const rows = statuses.map((s) => [
    s.id,
    s.processing_status,
    String(s.total),
    String(s.request_counts.succeeded),
    String(s.request_counts.errored),
    String(s.request_counts.canceled),
    String(s.request_counts.processing),
    s.via === 'auto' ? `auto→${s.route}` : s.via,
    String(s.priority),
    s.fair_share ? `${Math.round(s.fair_share.share * 100)}%` : '-',
    s.fair_share?.eta_s != null ? formatDuration(s.fair_share.eta_s) : '-',
    s.cost
      ? `$${s.cost.spent_usd.toFixed(2)}${s.cost.ceiling_usd === null ? '' : `/$${s.cost.ceiling_usd}`}${s.paused.some((p) => p.reason === 'cost_ceiling') ? ' (ceiling)' : ''}`
      : s.estimated_cost.usd
        ? `~$${s.estimated_cost.usd.toFixed(2)}`
        : '-',
    s.created_at,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The shared budget in force and its current level, one line per limited class. */
export function formatBudget(snapshot: BudgetSnapshot): string {
  const limited = snapshot.classes.filter((c) => c.requests || c.inputTokens || c.outputTokens);
  if (limited.length === 0)
    return (
      'budget: none set (--rpm/--itpm/--otpm or --budgets) and none learned yet: the workers take the ' +
      "API's limits from its first responses"
    );
  const dim = (label: string, d: BudgetDimensionSnapshot | null) => {
    if (!d) return null;
    const adapted = d.capacity < d.configured ? ` (lowered to ${d.capacity} by the API's headers)` : '';
    const level = d.level === null ? 'unused yet' : `${Math.floor(d.level)} left`;
    const source = d.source === 'api' ? ' (learned from the API)' : '';
    return `${label} ${d.configured}/min${source}${adapted}, ${level}`;
  };
  const lines = [`budget (account ${snapshot.accountId}, shared by every worker of this key):`];
  for (const c of limited) {
    const parts = [
      dim('requests', c.requests),
      dim('input tokens', c.inputTokens),
      dim('output tokens', c.outputTokens),
    ].filter((p): p is string => p !== null);
    const hold = c.holdMs > 0 ? `; holding ${Math.ceil(c.holdMs / 1000)} s after a 429` : '';
    lines.push(`  ${c.name}${c.match ? ` (${c.match})` : ''}: ${parts.join('; ')}${hold}`);
  }
  return lines.join('\n');
}

/** Seconds as `45s`, `12m05s` or `3h20m`. */
function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3_600)}h${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
}
