import type { KeyBreakerState, ModelBreakerState } from '../breakers/breaker-state.js';
import { CONDITION_SUMMARY, fixFor, isCondition } from '../errors/error-table.js';
import type { BatchStatus } from '../operations/batch-status.js';
import type { DashboardSnapshot, QueueSnapshot } from './dashboard-data.js';
import { html, raw, withCode, type SafeHtml } from './html.js';
import { estimateBatchCost, findPrice, type PriceTable } from '../pricing/price-table.js';

export interface BatchPageInput {
  snapshot: DashboardSnapshot;
  prices: PriceTable;
  /** Key prefix of the deployment (never the Redis URL: it may hold a password). */
  prefix: string;
  readOnly: boolean;
  /** Seconds between reloads; 0 turns reloading off. */
  refreshSeconds: number;
  /** Where Bull Board is mounted, relative to the page (e.g. `queues`). */
  boardPath: string;
}

const STYLE = raw(`
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; background: #f6f6f4; }
body { margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: .5rem 0 1rem; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
a { color: #0b57d0; }
.muted { color: #666; font-size: .85rem; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1rem; margin: .8rem 0; }
.alert { background: #fff1f0; border: 2px solid #c62828; border-radius: 8px; padding: .8rem 1rem; margin: .8rem 0; }
.alert h2 { color: #c62828; margin-top: 0; }
.warn { background: #fff8e1; border: 1px solid #e0a800; border-radius: 8px; padding: .6rem 1rem; margin: .8rem 0; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 999px; font-size: .8rem; font-weight: 600; }
.st-in_progress { background: #e3f2fd; color: #0d47a1; } .st-ended { background: #e8f5e9; color: #1b5e20; }
.st-paused { background: #c62828; color: #fff; font-size: .95rem; } .st-canceling { background: #fff3e0; color: #e65100; }
.bar { display: flex; height: 14px; border-radius: 7px; overflow: hidden; background: #e0e0e0; margin: .4rem 0; }
.bar span { display: block; height: 100%; }
.c-succeeded { background: #2e7d32; } .c-errored { background: #c62828; } .c-canceled { background: #9e9e9e; }
.c-processing { background: #42a5f5; } .c-pending { background: #e0e0e0; }
.legend span { margin-right: 1rem; white-space: nowrap; } .dot { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .25rem; vertical-align: middle; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: .5rem 1.5rem; }
@media (min-width: 900px) { .batch .grid { grid-template-columns: 2fr 1fr 1fr; } }
form.inline { display: inline; } button { font: inherit; padding: .2rem .8rem; cursor: pointer; }
`);

const nf = new Intl.NumberFormat('en-US');
const n = (value: number) => nf.format(value);

function usd(value: number | null): string {
  if (value === null) return 'unknown';
  if (value === 0) return '$0.00';
  return value < 1 ? `$${value.toFixed(4)}` : `$${nf.format(Math.round(value * 100) / 100)}`;
}

function pct(part: number, total: number): string {
  return total > 0 ? `${Math.max(0, Math.min(100, (part / total) * 100)).toFixed(2)}%` : '0%';
}

function progress(batch: BatchStatus): SafeHtml {
  const { succeeded, errored, canceled, processing } = batch.request_counts;
  const total = Math.max(batch.total, succeeded + errored + canceled + processing);
  const pending = Math.max(0, total - succeeded - errored - canceled - processing);
  const parts: [string, string, number][] = [
    ['succeeded', 'succeeded', succeeded],
    ['errored', 'errored', errored],
    ['canceled', 'canceled', canceled],
    ['processing', 'processing', processing],
  ];
  if (pending > 0) parts.push(['pending', 'not yet enqueued', pending]);
  return html`<div
      class="bar"
      role="img"
      aria-label="${parts.map(([, label, v]) => `${label} ${v}`).join(', ')} of ${total}"
    >
      ${parts.map(([cls, label, v]) => (v > 0 ? html`<span class="c-${cls}" style="width:${pct(v, total)}" title="${label} ${v}"></span>` : ''))}
    </div>
    <div class="legend">
      ${parts.map(([cls, label, v]) => html`<span data-count="${cls}"><i class="dot c-${cls}"></i>${label} <b>${n(v)}</b></span>`)}
      <span>total <b>${n(batch.total)}</b></span>
    </div>`;
}

function keyBreakerAlert(key: KeyBreakerState): SafeHtml {
  if (key.reason === 'manual') {
    return html`<section class="alert" id="key-breaker">
      <h2>Queue PAUSED by hand</h2>
      <p>
        Paused by an operator (\`claude-batch pause\` or this dashboard) since ${key.since || '—'}. No request
        is sent until it is resumed.
      </p>
      <p><b>Fix:</b> ${withCode(key.fix || 'run `claude-batch resume`')}</p>
    </section>`;
  }
  return html`<section class="alert" id="key-breaker" data-condition="${key.condition ?? ''}">
    <h2>
      Queue PAUSED${key.condition ? `: ${CONDITION_SUMMARY[key.condition]}` : ''} (key breaker:
      <code>${key.type}</code>${key.error_code ? html` (<code>${key.error_code}</code>)` : ''})
    </h2>
    <p>Every request of this API key would fail the same way, so no request is sent until it is fixed.</p>
    <table>
      <tr>
        <th>Message</th>
        <td>${key.message || '—'}</td>
      </tr>
      <tr>
        <th>Since</th>
        <td>${key.since || '—'}</td>
      </tr>
      ${
        key.request_id
          ? html`<tr>
              <th>Request id</th>
              <td><code>${key.request_id}</code></td>
            </tr>`
          : ''
      }
      <tr>
        <th>Fix</th>
        <td><b>${withCode(key.fix || fixFor(key.type, key.condition))}</b></td>
      </tr>
    </table>
  </section>`;
}

function modelBreakers(models: ModelBreakerState[]): SafeHtml {
  if (models.length === 0) return html``;
  return html`<section class="warn" id="model-breakers">
    <h2>Open model breakers</h2>
    <p class="muted">Remaining requests of these models are dead-lettered unsent.</p>
    <table>
      <tr>
        <th>Model</th>
        <th>Type</th>
        <th>Message</th>
        <th>Since</th>
        <th>Fix</th>
      </tr>
      ${models.map(
        (m) =>
          html`<tr>
            <td><code>${m.model}</code></td>
            <td><code>${m.type}</code></td>
            <td>${m.message}</td>
            <td>${m.since}</td>
            <td>${withCode(m.fix || fixFor(m.type))}</td>
          </tr>`,
      )}
    </table>
  </section>`;
}

function queueCard(queue: QueueSnapshot, boardPath: string, label: string): SafeHtml {
  const states = Object.entries(queue.counts).filter(([, v]) => v > 0);
  return html`<div>
    <b>${label}</b> <a href="${boardPath}/queue/${encodeURIComponent(queue.name)}">${queue.name}</a>
    ${queue.paused ? html`<span class="badge st-paused">paused</span>` : ''}
    <div class="muted">
      ${states.length === 0 ? 'empty' : states.map(([s, v]) => `${s} ${n(v)}`).join(' · ')}
    </div>
  </div>`;
}

function batchCard(
  batch: BatchStatus,
  input: BatchPageInput,
  openModels: Map<string, ModelBreakerState>,
  key: KeyBreakerState | null,
): SafeHtml {
  const cost = estimateBatchCost(batch, input.prices);
  const errors = Object.entries(batch.errored_by_type).sort(([, a], [, b]) => b - a);
  const conditions = Object.entries(batch.errored_by_condition).filter(([c]) => isCondition(c));
  const models = Object.entries(batch.models).sort(([a], [b]) => a.localeCompare(b));
  const u = batch.usage;
  return html`<section class="card batch" id="batch-${batch.id}" data-batch="${batch.id}">
    <h2>
      <code>${batch.id}</code>
      <span class="badge st-${batch.processing_status}">${batch.processing_status}</span>
      ${batch.submit_state === 'submitting' ? html`<span class="badge st-canceling">submitting</span>` : ''}
    </h2>
    ${batch.paused.map((p) =>
      p.scope !== 'batch'
        ? ''
        : p.reason === 'hosted_chunk_held'
          ? html`<p class="alert" data-batch-pause="${p.reason}" data-chunk="${p.chunk}">
              <b>Hosted chunk ${p.chunk} held for an operator</b> since ${p.since}: ${p.message}.
              ${p.candidates.length > 0 ? html`Candidates: ${p.candidates.map((c, i) => html`${i > 0 ? ', ' : ''}<code>${c}</code>`)}.` : ''}
              <b>Fix:</b> <code>${p.fix}</code>
            </p>`
          : html`<p class="alert" data-batch-pause="${p.reason}">
              <b>Paused at its cost ceiling</b> (this batch only) since ${p.since}: $${p.spent_usd.toFixed(4)}
              spent of $${p.ceiling_usd}. ${p.message}. <b>Fix:</b> ${withCode(p.fix)}
            </p>`,
    )}
    ${
      batch.processing_status === 'paused' && batch.paused.some((p) => p.scope === 'queue')
        ? html`<p>
            <b>Paused:</b> ${
              key?.reason === 'manual'
                ? html`paused by hand since ${key.since}; resume the queue to continue.`
                : key
                  ? html`${key.condition ? `${CONDITION_SUMMARY[key.condition]}: ` : ''}key breaker
                      <code>${key.type}</code> since ${key.since}: ${key.message.replace(/\.?\s*$/, '.')}
                      <b>Fix:</b> ${withCode(key.fix || fixFor(key.type, key.condition))}`
                  : 'the queue was paused by an operator; resume it to continue.'
            }
          </p>`
        : ''
    }
    <div class="muted">
      source ${batch.source || '—'} · created
      ${batch.created_at}${batch.ended_at ? ` · ended ${batch.ended_at}` : ''}
    </div>
    ${progress(batch)} ${hostedSection(batch)}
    <div class="grid">
      <div>
        <h3>Errors by type</h3>
        ${
          errors.length === 0
            ? html`<p class="muted">none</p>`
            : html`<table class="errors">
                <tr>
                  <th>Type</th>
                  <th class="num">Requests</th>
                  <th>Fix</th>
                </tr>
                ${errors.map(
                  ([type, count]) =>
                    html`<tr data-error-type="${type}">
                      <td><code>${type}</code></td>
                      <td class="num">${n(count)}</td>
                      <td>${withCode(fixFor(type))}</td>
                    </tr>`,
                )}
              </table>`
        }
        ${
          conditions.length === 0
            ? ''
            : html`<table class="errors conditions">
                <tr>
                  <th>Condition</th>
                  <th class="num">Requests</th>
                  <th>Fix</th>
                </tr>
                ${conditions.map(
                  ([condition, count]) =>
                    html`<tr data-condition="${condition}">
                      <td>
                        ${CONDITION_SUMMARY[condition as keyof typeof CONDITION_SUMMARY]}
                        (<code>${condition}</code>)
                      </td>
                      <td class="num">${n(count)}</td>
                      <td>${withCode(fixFor('', condition as keyof typeof CONDITION_SUMMARY))}</td>
                    </tr>`,
                )}
              </table>`
        }
        <p>
          truncated (max_tokens) <b data-count="truncated">${n(batch.truncated)}</b> · refused
          <b data-count="refused">${n(batch.refused)}</b>
        </p>
        <p data-share>
          priority <b>${n(batch.priority)}</b>${
            batch.fair_share
              ? html` · share of what is sent now <b>${Math.round(batch.fair_share.share * 100)}%</b> ·
                  ${batch.fair_share.rate_per_s.toFixed(1)} requests/s · ${n(batch.fair_share.waiting)}
                  waiting for a
                  turn${batch.fair_share.eta_s === null ? '' : ` · ETA ${Math.ceil(batch.fair_share.eta_s / 60)} min`}`
              : ''
          }
        </p>
      </div>
      <div>
        <h3>Usage</h3>
        <table class="usage">
          <tr>
            <th>input tokens</th>
            <td class="num">${n(u.input_tokens)}</td>
          </tr>
          <tr>
            <th>output tokens</th>
            <td class="num">${n(u.output_tokens)}</td>
          </tr>
          <tr>
            <th>cache write tokens</th>
            <td class="num">${n(u.cache_creation_input_tokens)}</td>
          </tr>
          <tr>
            <th>cache read tokens</th>
            <td class="num">${n(u.cache_read_input_tokens)}</td>
          </tr>
          <tr>
            <th>read from the cache</th>
            <td class="num" data-cache-hit>${cacheHitRate(batch.cache)}</td>
          </tr>
          ${
            batch.cache?.saved_usd != null
              ? html`<tr>
                  <th>saved by caching</th>
                  <td class="num" data-cache-saved>${usd(batch.cache.saved_usd)}</td>
                </tr>`
              : ''
          }
          <tr>
            <th>estimated cost</th>
            <td class="num" data-cost>${usd(cost.usd)}${cost.exact ? '' : ' (approx.)'}</td>
          </tr>
          ${
            cost.hosted_usd
              ? html`<tr>
                  <th>of which hosted at half price</th>
                  <td class="num" data-cost-hosted>${usd(cost.hosted_usd)}</td>
                </tr>`
              : ''
          }
          ${
            batch.cost
              ? html`<tr>
                    <th>spent (cost ledger)</th>
                    <td class="num" data-cost-spent>
                      $${batch.cost.spent_usd.toFixed(4)}${batch.cost.reserved_usd > 0 ? ` + $${batch.cost.reserved_usd.toFixed(4)} reserved` : ''}
                    </td>
                  </tr>
                  <tr>
                    <th>cost ceiling</th>
                    <td class="num" data-cost-ceiling>
                      ${
                        batch.cost.ceiling_usd === null
                          ? 'none'
                          : `$${batch.cost.ceiling_usd} (${Math.floor((batch.cost.spent_usd / batch.cost.ceiling_usd) * 100)}% spent)`
                      }
                    </td>
                  </tr>`
              : ''
          }
        </table>
        ${cost.unpriced.length > 0 ? html`<p class="muted">No price for ${cost.unpriced.join(', ')}: left out of the estimate (see --prices).</p>` : ''}
        ${!cost.exact && cost.unpriced.length === 0 ? html`<p class="muted">Mixed models: rates averaged by each model's share of the requests.</p>` : ''}
      </div>
      <div>
        <h3>Models</h3>
        <table>
          ${models.map(([model, requests]) => {
            const price = findPrice(input.prices, model);
            const breaker = openModels.get(model);
            return html`<tr>
              <td>
                <code>${model}</code
                >${breaker ? html` <span class="badge st-paused" title="${breaker.message}">breaker open: ${breaker.type}</span>` : ''}
              </td>
              <td class="num">${n(requests)} req</td>
              <td class="muted">${price ? `$${price.input}/$${price.output} per MTok` : 'no price'}</td>
            </tr>`;
          })}
        </table>
      </div>
    </div>
    <p class="muted">
      <a href="${input.boardPath}/queue/requests">requests in Bull Board</a> ·
      <a href="${input.boardPath}/queue/dead-letter">dead letters in Bull Board</a> ·
      <a href="api/batches/${encodeURIComponent(batch.id)}">JSON</a>
    </p>
  </section>`;
}

/** The batch page: one card per batch, newest first, under the breaker alerts. */
export function renderBatchPage(input: BatchPageInput): string {
  const { snapshot } = input;
  const key = snapshot.breakers.key;
  const paused = snapshot.queues.requests.paused;
  const openModels = new Map(snapshot.breakers.models.map((m) => [m.model, m]));
  const batches = [...snapshot.batches].reverse();
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${input.refreshSeconds > 0 ? html`<meta http-equiv="refresh" content="${input.refreshSeconds}" />` : ''}
        <title>${paused ? 'PAUSED · ' : ''}claude-batch</title>
        <style>
          ${STYLE}
        </style>
      </head>
      <body>
        <h1>
          claude-batch <span class="muted">prefix <code>${input.prefix}</code></span>
        </h1>
        <nav class="muted">
          <a href="${input.boardPath}">Bull Board (all queues)</a> · <a href="api/batches">/api/batches</a> ·
          <a href="api/breakers">/api/breakers</a> · <a href="metrics">/metrics</a>
          ${input.readOnly ? html` · <b>read-only</b>` : ''}
        </nav>
        ${key ? keyBreakerAlert(key) : ''}
        ${
          paused && !key
            ? html`<section class="alert" id="paused">
                <h2>Queue PAUSED</h2>
                <p>Paused by an operator (not by a breaker): no request is sent until it is resumed.</p>
              </section>`
            : ''
        }
        ${modelBreakers(snapshot.breakers.models)} ${ceilingPauses(batches)} ${heldChunks(batches)}
        <section class="card grid" id="queues">
          ${queueCard(snapshot.queues.requests, input.boardPath, 'Main queue')}
          ${queueCard(snapshot.queues.deadLetters, input.boardPath, 'Dead-letter queue')}
          ${
            input.readOnly
              ? ''
              : html`<div>
                  <form class="inline" method="post" action="api/${paused ? 'resume' : 'pause'}">
                    <button type="submit">${paused ? 'Resume queue' : 'Pause queue'}</button>
                  </form>
                  ${key && key.reason !== 'manual' ? html`<div class="muted">Resuming clears the key breaker: fix its cause first.</div>` : ''}
                </div>`
          }
        </section>
        <h2>Batches (${n(batches.length)})</h2>
        ${batches.length === 0 ? html`<p class="muted">No batch under this prefix yet. Submit one with <code>claude-batch submit FILE</code>.</p>` : ''}
        ${batches.map((b) => batchCard(b, input, openModels, key))}
        <p class="muted">
          Updated
          ${snapshot.at}${input.refreshSeconds > 0 ? ` · reloads every ${input.refreshSeconds} s` : ''} ·
          prices: ${input.prices.source} (estimates)
        </p>
      </body>
    </html> `;
  return page.value;
}

/** The batches paused at their cost ceiling, listed at the top: the rest of the queue runs. */
function ceilingPauses(batches: readonly BatchStatus[]): SafeHtml | string {
  const held = batches.filter((b) => b.paused.some((p) => p.reason === 'cost_ceiling'));
  if (held.length === 0) return '';
  return html`<section class="alert" id="cost-ceilings">
    <h2>${n(held.length)} batch${held.length > 1 ? 'es' : ''} paused at their cost ceiling</h2>
    <table>
      ${held.map(
        (b) =>
          html`<tr data-ceiling-paused="${b.id}">
            <td>
              <a href="#batch-${b.id}"><code>${b.id}</code></a>
            </td>
            <td class="num">$${(b.cost?.spent_usd ?? 0).toFixed(4)} of $${b.cost?.ceiling_usd ?? 0}</td>
            <td><code>claude-batch resume ${b.id} --max-cost N</code></td>
          </tr>`,
      )}
    </table>
    <p class="muted">Other batches keep running.</p>
  </section>`;
}

/** The share of prompt tokens read from the cache (auto-caching's effect), or a dash before any. */
function cacheHitRate(cache: BatchStatus['cache']): string {
  return cache === null ? '-' : `${Math.round(cache.read_share * 100)}%`;
}

/** Time from now to an RFC 3339 time, as `3h20m left` or `passed 5 min ago`. */
function timeLeft(at: string, now: number): string {
  const minutes = Math.round((Date.parse(at) - now) / 60_000);
  const span = (m: number) =>
    m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m} min`;
  return minutes >= 0 ? `${span(minutes)} left` : `passed ${span(-minutes)} ago`;
}

/**
 * The path of a batch (issue 14): via, route, deadline, what each path answered, and a table of
 * its hosted batches with their ids, the API's status and counts. Nothing for a live batch that
 * never used the hosted API.
 */
function hostedSection(batch: BatchStatus): SafeHtml | string {
  if (batch.via === 'live' && batch.hosted === null && batch.served.hosted === 0) return '';
  const chunks = batch.hosted?.batches ?? [];
  const path =
    batch.via === 'auto'
      ? batch.route === 'live'
        ? html`auto → <b>live</b>${batch.switched_at ? ` since ${batch.switched_at}` : ''} (the deadline left
            no room for the hosted path)`
        : html`auto, <b>hosted</b> while the deadline leaves room`
      : batch.via === 'batches'
        ? html`<b>batches</b> (hosted Message Batches API, half price)`
        : html`<b>${batch.via}</b>`;
  return html`<div class="hosted" data-path="${batch.via}" data-route="${batch.route}">
    <p>
      via
      ${path}${batch.deadline ? html` · deadline <span data-deadline>${batch.deadline}</span> (${timeLeft(batch.deadline, Date.now())})` : ''}
      · answered <b data-served="live">${n(batch.served.live)}</b> live,
      <b data-served="hosted">${n(batch.served.hosted)}</b> hosted
    </p>
    ${
      chunks.length === 0
        ? ''
        : html`<h3>Hosted batches</h3>
            <table class="hosted-batches">
              <tr>
                <th class="num">Chunk</th>
                <th>Hosted batch</th>
                <th>State</th>
                <th>API status</th>
                <th class="num">Requests</th>
                <th class="num">Processing</th>
                <th class="num">Succeeded</th>
                <th class="num">Errored</th>
                <th class="num">Canceled</th>
                <th class="num">Expired</th>
                <th>Created</th>
                <th>Ended</th>
              </tr>
              ${chunks.map((c) => {
                const k = c.request_counts;
                const count = (v: number | undefined) => (v === undefined ? '—' : n(v));
                return html`<tr data-chunk="${c.chunk}" data-hosted-id="${c.hosted_id ?? ''}">
                  <td class="num">${c.chunk}</td>
                  <td>${c.hosted_id ? html`<code>${c.hosted_id}</code>` : '—'}</td>
                  <td>${c.state === 'held' ? html`<span class="badge st-paused">held</span>` : c.state}</td>
                  <td>${c.processing_status ?? '—'}</td>
                  <td class="num">${n(c.requests)}</td>
                  <td class="num">${count(k?.processing)}</td>
                  <td class="num">${count(k?.succeeded)}</td>
                  <td class="num">${count(k?.errored)}</td>
                  <td class="num">${count(k?.canceled)}</td>
                  <td class="num">${count(k?.expired)}</td>
                  <td>${c.created_at ?? '—'}</td>
                  <td>${c.ended_at ?? '—'}</td>
                </tr>`;
              })}
            </table>`
    }
  </div>`;
}

/** Hosted chunks held for an operator, listed at the top: each waits for a command to settle it. */
function heldChunks(batches: readonly BatchStatus[]): SafeHtml | string {
  const held = batches.flatMap((b) =>
    b.paused.flatMap((p) =>
      p.scope === 'batch' && p.reason === 'hosted_chunk_held' ? [{ batch: b.id, p }] : [],
    ),
  );
  if (held.length === 0) return '';
  return html`<section class="alert" id="hosted-held">
    <h2>${n(held.length)} hosted chunk${held.length > 1 ? 's' : ''} held for an operator</h2>
    <table>
      ${held.map(
        ({ batch, p }) =>
          html`<tr data-hosted-held="${batch}" data-chunk="${p.chunk}">
            <td>
              <a href="#batch-${batch}"><code>${batch}</code></a> chunk ${p.chunk}
            </td>
            <td>${p.message}</td>
            <td>
              ${p.candidates.length > 0 ? html`candidates ${p.candidates.map((c, i) => html`${i > 0 ? ', ' : ''}<code>${c}</code>`)}` : 'no candidate'}
            </td>
            <td><code>${p.fix}</code></td>
          </tr>`,
      )}
    </table>
    <p class="muted">Creating such a chunk again might pay for it twice, so the runner waits for you.</p>
  </section>`;
}
