/**
 * The end of a model-check run: quiesce (faults off, a worker running, each pause's stated fix
 * applied, in a loop until every live batch has ended or a deadline passes), then the checks,
 * which read the real state: Redis (status, results, dead-letter queue) and the emulator's log.
 */
// eslint-disable-next-line no-restricted-imports -- see the one use below, and its reason.
import { setTimeout as sleep } from 'node:timers/promises';
import { FIX_MODEL, type Incarnation } from './model-state.js';
import {
  deadLetterEntries,
  getBatchStatus,
  getBreakerState,
  Chunks,
  Holds,
  LOST_ERROR_TYPE,
  replyFingerprint,
  requestJobId,
  resumeQueue,
  retryDeadLetters,
  type BatchStatus,
  type DeadLetterEntry,
  type MessageParams,
  type RequestLogEntry,
} from './system.js';
import { BASE_LATENCY, type World } from './world.js';

/** Error types whose entries a stated fix sends again: model breakers and key-wide breakers. */
const MODEL_TYPES = new Set(['not_found_error', 'permission_error']);
const KEY_TYPES = new Set(['billing_error', 'authentication_error']);

async function allEntries(w: World): Promise<DeadLetterEntry[]> {
  const out: DeadLetterEntry[] = [];
  for await (const { entry } of deadLetterEntries(w.runtime)) out.push(entry);
  return out;
}

const key = (batch: string, cid: string) => `${batch}.${cid}`;

/** The prompt hashes a request may be sent under: as submitted, or re-pointed by `dlq retry --model`. */
function promptHashes(params: MessageParams): string[] {
  return [replyFingerprint(params), replyFingerprint({ ...params, model: FIX_MODEL })];
}

/**
 * Applies the stated fixes until every live batch has ended. A batch still not ended at the
 * deadline is a violation (with its status). Requests that a fix here sent again must not come
 * back dead-lettered by a breaker: the faults are off, so the fix must hold.
 */
export async function quiesce(w: World, deadlineMs: number): Promise<void> {
  const c = w.emulator.control;
  c.setFaults({});
  c.setLatency(BASE_LATENCY);
  w.note('quiesce: faults off');
  if (w.pool.running === 0) {
    await w.pool.start();
    w.note('quiesce: worker start');
  }
  /** Requests a stated fix sent again, with the type it fixed and the generation it sent. */
  const retried = new Map<string, { type: string; gen: number }>();
  const remember = (entries: DeadLetterEntry[], type: string) => {
    for (const e of entries)
      if (e.error_type === type) retried.set(key(e.batch_id, e.custom_id), { type, gen: e.gen + 1 });
  };
  const deadline = Date.now() + deadlineMs;
  let statuses: Array<BatchStatus | null> = [];
  let idleSince: number | null = null;
  let why: string;
  for (;;) {
    const ids = w.model.liveIds();
    statuses = await Promise.all(ids.map((id) => getBatchStatus(w.runtime, id)));
    const entries = (await allEntries(w)).filter((e) => w.model.live(e.batch_id));
    for (const e of entries) {
      const fixed = retried.get(key(e.batch_id, e.custom_id));
      // The same error again, for the generation the fix sent: the fix did not hold.
      if (fixed && e.gen >= fixed.gen && e.error_type === fixed.type) {
        w.violation(
          `dlq retry did not hold: ${e.batch_id}/${e.custom_id} (gen ${e.gen}) was dead-lettered again as ` +
            `${e.error_type} (${e.reason}, status ${e.status}) after the stated fix, with every fault off: ${e.message.slice(0, 160)}`,
          `dlq retry did not hold ${e.batch_id} ${e.error_type} ${e.reason}`,
        );
      }
    }
    const paused = await w.runtime.requests.isPaused();
    const breaker = paused ? (await getBreakerState(w.runtime)).key : null;
    let acted = false;
    if (paused && (!breaker || breaker.reason === 'manual')) {
      await resumeQueue(w.runtime);
      w.note('quiesce: resume');
      acted = true;
    } else if (paused && breaker) {
      // A key-wide breaker: top up (or restore), then what its fix says: dlq retry --type TYPE.
      if (c.stats().creditBalance !== null) c.topUp(1_000_000);
      const r = await retryDeadLetters(w.runtime, { type: breaker.type });
      remember(entries, breaker.type);
      w.note(
        `quiesce: top up + dlq retry --type ${breaker.type} -> requeued ${r.requeued}, resumed ${r.resumed}`,
      );
      if (await w.runtime.requests.isPaused()) {
        w.violation(
          `the stated fix of the key-wide breaker (${breaker.fix}) left the queue paused ` +
            `(dlq retry requeued ${r.requeued}); resumed by hand to go on`,
        );
        await resumeQueue(w.runtime);
      }
      acted = true;
    }
    const fixable = entries.filter((e) => MODEL_TYPES.has(e.error_type) || KEY_TYPES.has(e.error_type));
    for (const type of new Set(fixable.map((e) => e.error_type))) {
      if (KEY_TYPES.has(type) && c.stats().creditBalance !== null) c.topUp(1_000_000);
      const options = MODEL_TYPES.has(type) ? { type, model: FIX_MODEL } : { type };
      const r = await retryDeadLetters(w.runtime, options);
      remember(fixable, type);
      w.note(
        `quiesce: dlq retry --type ${type}${MODEL_TYPES.has(type) ? ` --model ${FIX_MODEL}` : ''} -> requeued ${r.requeued}`,
      );
      acted = true;
    }
    const allEnded = statuses.every((s) => s?.processing_status === 'ended');
    if (allEnded && !acted && !paused) return;
    // Nothing left in the queue to work on and nothing to fix, yet not ended: stuck for good.
    const idle = !acted && !paused && (await nothingRunnable(w));
    idleSince = idle ? (idleSince ?? Date.now()) : null;
    // Long enough for the reconciler (a 1 s interval, a 1 s stall window, a 1 s confirmation) to act.
    const idleMs = w.options.idleMs ?? 6_000;
    if (idleSince !== null && Date.now() - idleSince > idleMs) {
      why = `nothing runnable for ${idleMs} ms`;
      break;
    }
    if (Date.now() > deadline) {
      why = `${deadlineMs} ms deadline`;
      break;
    }
    // eslint-disable-next-line no-restricted-syntax -- the poll interval of a loop bounded by its deadline above.
    await sleep(250);
  }
  const stuck = statuses.filter((s) => s && s.processing_status !== 'ended');
  const missing = w.model.liveIds().filter((_, i) => statuses[i] === null);
  const counts = await w.runtime.requests.getJobCounts();
  for (const s of stuck) {
    w.violation(
      `batch ${s!.id} did not end in quiesce (${why}; open requests' jobs: ${await openJobStates(w, s!.id)}): ${JSON.stringify(
        {
          processing_status: s!.processing_status,
          request_counts: s!.request_counts,
          canary: s!.canary,
          paused: s!.paused[0]?.reason ?? null,
          canceled_at: s!.canceled_at,
          submit_state: s!.submit_state,
        },
      )}; queue ${JSON.stringify(counts)}`,
    );
  }
  for (const id of missing) w.violation(`batch ${id} is live in the model but has no record`);
}

/**
 * Whether no job can make progress by itself: nothing waiting or active, nothing held for a
 * batch's share (the dispatcher sends it), nothing in a hosted batch on its way, and no delayed
 * job (a retry) due soon.
 */
async function nothingRunnable(w: World): Promise<boolean> {
  const counts = await w.runtime.requests.getJobCounts('waiting', 'active', 'prioritized');
  if (Object.values(counts).some((n) => n > 0)) return false;
  if ((await new Holds(w.runtime).waitingForShare()) > 0) return false;
  // Requests in hosted batches the runner is moving along (not held for an operator): it brings
  // their results by itself.
  if ((await new Chunks(w.runtime).everywhere()).pending > 0) return false;
  const soon = Date.now() + 60_000;
  const delayed = await w.runtime.requests.getDelayed(0, 999);
  return delayed.every((job) => job.timestamp + (job.delay ?? 0) > soon);
}

/**
 * Where the requests of a batch without a results line are: e.g. `completed x3` (a job id BullMQ
 * still held swallowed the new one), `unknown x5` (removed), `held share x4`.
 */
async function openJobStates(w: World, id: string): Promise<string> {
  const inc = w.model.live(id);
  if (!inc) return 'none';
  const { redis, keys, requests } = w.runtime;
  const [lines, gens, incarnation] = await Promise.all([
    redis.hgetall(keys.results(id)),
    redis.hgetall(keys.generations(id)),
    redis.hget(keys.batch(id), 'incarnation'),
  ]);
  const states = new Map<string, number>();
  const chunks = new Chunks(w.runtime);
  for (const r of inc.requests) {
    if (lines[r.custom_id] !== undefined) continue;
    const gen = Number(gens[r.custom_id] ?? 0);
    const jobId = requestJobId(id, r.custom_id, gen, Number(incarnation ?? 0));
    const job = await requests.getJob(jobId);
    let state: string = job ? await job.getState() : 'unknown';
    if (!job) {
      for (const key of await new Holds(w.runtime).keysOf(id)) {
        if ((await redis.type(key)) === 'hash' && (await redis.hexists(key, jobId)))
          state = key.slice(key.lastIndexOf(`${id}:`) + id.length + 1);
      }
      // In a hosted batch (issue 14): its chunk's state, and the hosted batch's.
      for (const chunk of await chunks.all(id)) {
        if ((await redis.hexists(keys.chunk(id, chunk.n), jobId)) === 1) {
          state = `hosted chunk ${chunk.n} ${chunk.state}${chunk.processing_status ? ` (${chunk.processing_status})` : ''}`;
        }
      }
    }
    if (job?.data.canary) state += ' canary';
    states.set(state, (states.get(state) ?? 0) + 1);
  }
  return [...states].map(([state, n]) => `${state} x${n}`).join(', ') || 'none';
}

/** An emulator log entry's owner: which incarnation of which batch id, and which custom_id. */
interface Owner {
  id: string;
  custom_id: string;
  incarnations: Incarnation[];
}

/** The incarnation alive when a request arrived: the last one submitted before it. */
function incarnationAt(incarnations: Incarnation[], at: number): Incarnation | undefined {
  let found: Incarnation | undefined;
  for (const inc of incarnations) if (inc.submitted.start <= at) found = inc;
  return found;
}

export async function checkInvariants(w: World): Promise<void> {
  const { runtime } = w;
  const entries = await allEntries(w);
  const entryIds = new Set(entries.map((e) => requestJobId(e.batch_id, e.custom_id, e.gen, e.inc ?? 0)));

  for (const id of w.model.liveIds()) {
    const inc = w.model.live(id)!;
    const status = await getBatchStatus(runtime, id);
    if (!status) continue; // reported by quiesce
    const total = inc.requests.length;
    const c = status.request_counts;
    if (status.total !== total) w.violation(`batch ${id}: total ${status.total}, model ${total}`);
    if (status.processing_status === 'ended' && c.succeeded + c.errored + c.canceled !== total) {
      w.violation(`batch ${id} ended but counts do not sum to ${total}: ${JSON.stringify(c)}`);
    }
    const lines = await runtime.redis.hgetall(runtime.keys.results(id));
    const gens = await runtime.redis.hgetall(runtime.keys.generations(id));
    const incarnation = Number((await runtime.redis.hget(runtime.keys.batch(id), 'incarnation')) ?? 0);
    const expected = new Set(inc.requests.map((r) => r.custom_id));
    for (const cid of Object.keys(lines)) {
      if (!expected.has(cid)) w.violation(`batch ${id}: a results line for unknown custom_id ${cid}`);
    }
    let missing = 0;
    const typeCounts: Record<string, number> = {};
    for (const cid of expected) {
      const line = lines[cid];
      if (line === undefined) {
        missing += 1;
        continue;
      }
      const result = (
        JSON.parse(line) as { result: { type: string; message?: { content?: Array<{ text?: string }> } } }
      ).result;
      const type = result.type;
      if (type === 'succeeded') {
        // The reply must be to this incarnation's prompt (its model possibly re-pointed by dlq retry).
        const text = result.message?.content?.[0]?.text ?? '';
        const request = inc.requests.find((r) => r.custom_id === cid)!;
        if (!promptHashes(request.params).some((h) => text.startsWith(`echo:${h}`))) {
          w.violation(
            `batch ${id}: ${cid}'s succeeded line answers another prompt (${text.slice(0, 17)}), not this batch's (v${inc.variant})`,
            `batch ${id} answers another prompt`,
          );
        }
      }
      typeCounts[type] = (typeCounts[type] ?? 0) + 1;
      if (type === 'canceled' && !inc.canceled) {
        w.violation(
          `batch ${id}: ${cid} ended canceled, but this batch (v${inc.variant}) was never canceled`,
          `batch ${id} canceled lines`,
        );
      }
      // A request the reconciler found in no place lost its parameters with its job: its line says
      // so (request_lost) and there is nothing a dead-letter entry could send again.
      const lost = type === 'errored' && line.includes(`"type":"${LOST_ERROR_TYPE}"`);
      if (
        type === 'errored' &&
        !lost &&
        !entryIds.has(requestJobId(id, cid, Number(gens[cid] ?? 0), incarnation))
      ) {
        w.violation(
          `batch ${id}: ${cid} has an errored line (gen ${gens[cid] ?? 0}) but no dead-letter entry`,
          `batch ${id} errored without entry`,
        );
      }
    }
    if (status.processing_status === 'ended' && missing > 0) {
      w.violation(`batch ${id} ended with ${missing} custom_ids without a results line`);
    }
    for (const [type, n] of Object.entries(typeCounts)) {
      const counted = type === 'succeeded' ? c.succeeded : type === 'errored' ? c.errored : c.canceled;
      if (counted !== n)
        w.violation(`batch ${id}: ${n} ${type} lines but request_counts.${type} = ${counted}`);
    }
  }

  // The emulator's log: who was sent when.
  const owners = new Map<string, Owner>();
  for (const [id, b] of w.model.batches) {
    for (const inc of b.incarnations) {
      for (const r of inc.requests) {
        for (const h of promptHashes(r.params)) {
          owners.set(h, { id, custom_id: r.custom_id, incarnations: b.incarnations });
        }
      }
    }
  }
  // Live calls and hosted requests alike (the emulator logs each hosted request when it processes it).
  const sends = w.emulator.control
    .log()
    .filter((e) => (e.path === '/v1/messages' || e.path === '/v1/messages/batches') && e.promptHash !== null);
  const byIncarnation = new Map<Incarnation, Map<string, RequestLogEntry[]>>();
  for (const e of sends) {
    const owner = owners.get(e.promptHash!);
    if (!owner) continue;
    const inc = incarnationAt(owner.incarnations, e.at);
    if (!inc) {
      w.violation(`${owner.id}/${owner.custom_id} was sent before its batch was submitted`);
      continue;
    }
    let m = byIncarnation.get(inc);
    if (!m) byIncarnation.set(inc, (m = new Map<string, RequestLogEntry[]>()));
    const list = m.get(owner.custom_id) ?? [];
    list.push(e);
    m.set(owner.custom_id, list);
  }
  for (const [id, b] of w.model.batches) {
    for (const inc of b.incarnations) {
      const sent = byIncarnation.get(inc) ?? new Map<string, RequestLogEntry[]>();
      for (const [cid, list] of sent) {
        // Nothing sent after a cancel or delete returned, except what was in flight then: a request
        // first sent after the command returned was not.
        for (const [what, span] of [
          ['cancel', inc.canceled],
          ['delete', inc.deleted],
        ] as const) {
          if (!span) continue;
          const first = list[0]!;
          if (first.at > span.end && !span.inFlight?.has(cid)) {
            w.violation(
              `${id}/${cid} (v${inc.variant}) was first sent ${first.at - span.end} ms after \`${what} ${id}\` returned`,
            );
          }
        }
        const ok = list.filter((e) => e.status === 200);
        for (let i = 1; i < ok.length; i++) {
          const crashed = w.crashes.some((t) => t >= ok[i - 1]!.at && t <= ok[i]!.at);
          if (!crashed) {
            w.violation(
              `${id}/${cid} (v${inc.variant}) had two successful calls (${ok.length} in all) with no worker or Redis killed in between`,
            );
            break;
          }
        }
      }
    }
  }
}
