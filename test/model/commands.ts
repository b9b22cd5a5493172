/**
 * The operations of the model check, as fast-check commands. Each one does the real thing through
 * the library (system.ts) and updates the model with what was done and when; none asserts on its
 * own except where the library's answer contradicts the model outright (recorded as a violation,
 * checked at the end).
 */
import { Readable } from 'node:stream';
// eslint-disable-next-line no-restricted-imports -- see the one use below, and its reason.
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  BATCH_IDS,
  BOGUS_MODEL,
  FIX_MODEL,
  VALID_MODELS,
  type ModelRequest,
  type ModelState,
} from './model-state.js';
import {
  cancelBatch,
  Chunks,
  deleteBatch,
  inputSource,
  pauseQueue,
  resumeQueue,
  retryDeadLetters,
  submitBatch,
} from './system.js';
import { BASE_LATENCY, type World } from './world.js';

type Cmd = fc.AsyncCommand<ModelState, World>;

/** A command: a label for the counterexample, a precondition on the model, the action. */
class Op implements Cmd {
  constructor(
    private readonly label: string,
    private readonly pre: (m: ModelState) => boolean,
    private readonly act: (m: ModelState, w: World) => Promise<string | void>,
  ) {}

  check(m: Readonly<ModelState>): boolean {
    return this.pre(m);
  }

  async run(m: ModelState, w: World): Promise<void> {
    const started = w.now();
    let outcome: string | void;
    try {
      outcome = await this.act(m, w);
    } catch (err) {
      outcome = `threw ${(err as Error).message}`;
    }
    w.ops.push(`${started}s ${this.label}${outcome ? ` -> ${outcome}` : ''}`);
  }

  toString(): string {
    return this.label;
  }
}

function jsonl(requests: readonly ModelRequest[], name: string) {
  const text = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  return inputSource(name, () => Readable.from([Buffer.from(text)]), { size: Buffer.byteLength(text) });
}

async function submit(
  m: ModelState,
  w: World,
  id: string,
  variant: number,
  requests: ModelRequest[],
  canary: boolean,
  via: 'live' | 'batches' = 'live',
) {
  const start = Date.now();
  const incarnation = {
    variant,
    requests,
    canary,
    via,
    submitted: { start, end: start },
    canceled: null,
    deleted: null,
  };
  // Recorded before the call: requests may be sent while it runs.
  m.batch(id).incarnations.push(incarnation);
  try {
    const r = await submitBatch(w.runtime, {
      input: jsonl(requests, `${id}.jsonl`),
      batchId: id,
      canary,
      via,
    });
    return `${r.outcome}, enqueued ${r.enqueued}`;
  } catch (err) {
    w.violation(`submit ${id} v${variant} failed: ${(err as Error).message}`);
    throw err;
  } finally {
    incarnation.submitted.end = Date.now();
  }
}

const batchId = fc.constantFrom(...BATCH_IDS);

/**
 * custom_ids of the batch in flight now: its jobs that are active (job id `batch.custom_id.gen`),
 * and its requests in hosted batches (issue 14), which the API may process after a cancel returns.
 */
async function activeIds(w: World, id: string): Promise<Set<string>> {
  const jobs = await w.runtime.requests.getJobs(['active'], 0, -1);
  const ids = jobs.flatMap((job) => (job?.id?.startsWith(`${id}.`) ? [job.id.split('.')[1]!] : []));
  for (const n of await new Chunks(w.runtime).openNumbers(id)) {
    for (const jobId of await w.runtime.redis.hkeys(w.runtime.keys.chunk(id, n)))
      ids.push(jobId.split('.')[1]!);
  }
  return new Set(ids);
}

/** Submit of a new file under a batch id that is not live. */
export function submitArbitrary(
  sizes: { min: number; max: number },
  models = fc.uniqueArray(fc.constantFrom<string>(...VALID_MODELS, BOGUS_MODEL), {
    minLength: 1,
    maxLength: 3,
  }),
  canaryArb: fc.Arbitrary<boolean> = fc.boolean(),
  // One in three through the hosted Message Batches API (issue 14).
  viaArb: fc.Arbitrary<'live' | 'batches'> = fc.constantFrom('live', 'live', 'batches'),
) {
  return fc.record({ id: batchId, models, size: fc.integer(sizes), canary: canaryArb, via: viaArb }).map(
    ({ id, models, size, canary, via }) =>
      new Op(
        `submit ${id} [${models.join(',')}] x${size}${canary ? '' : ' --no-canary'}${via === 'live' ? '' : ` --via ${via}`}`,
        (m) => m.live(id) === null,
        async (m, w) => {
          const { variant, requests } = m.newContent(id, models, size);
          return submit(m, w, id, variant, requests, canary, via);
        },
      ),
  );
}

const submitCmd = submitArbitrary({ min: 5, max: 40 });

/** Submits the batch id's last file again: a no-op while it lives, a new incarnation after a delete. */
const resubmitCmd = batchId.map(
  (id) =>
    new Op(
      `resubmit ${id}`,
      (m) => m.last(id) !== null,
      async (m, w) => {
        const last = m.last(id)!;
        if (!last.deleted) {
          const r = await submitBatch(w.runtime, {
            input: jsonl(last.requests, `${id}.jsonl`),
            batchId: id,
            canary: last.canary,
            via: last.via,
          });
          return `${r.outcome}, enqueued ${r.enqueued}`;
        }
        return submit(m, w, id, last.variant, last.requests, last.canary, last.via);
      },
    ),
);

const cancelCmd = batchId.map(
  (id) =>
    new Op(
      `cancel ${id}`,
      () => true,
      async (m, w) => {
        const live = m.live(id);
        const before = await activeIds(w, id);
        const start = Date.now();
        const r = await cancelBatch(w.runtime, id);
        const end = Date.now();
        const inFlight = new Set([...before, ...(await activeIds(w, id))]);
        if (live) live.canceled ??= { start, end, inFlight };
        if (live && !r.existed)
          w.violation(`cancel ${id}: the batch is live but cancel said it does not exist`);
        if (!live && r.existed) w.violation(`cancel ${id}: no such batch, but cancel said it exists`);
        return `existed ${r.existed}, canceled ${r.canceled}, in flight ${r.inFlight}`;
      },
    ),
);

const deleteCmd = batchId.map(
  (id) =>
    new Op(
      `delete ${id}`,
      () => true,
      async (m, w) => {
        const live = m.live(id);
        const before = await activeIds(w, id);
        const start = Date.now();
        const r = await deleteBatch(w.runtime, id);
        const end = Date.now();
        if (live) live.deleted = { start, end, inFlight: new Set([...before, ...(await activeIds(w, id))]) };
        return `existed ${r.existed}, removed ${r.removedRequests}`;
      },
    ),
);

const dlqRetryCmd = fc
  .oneof(
    fc.constant({}),
    fc.record({
      type: fc.constantFrom('billing_error', 'not_found_error', 'overloaded_error', 'rate_limit_error'),
    }),
    fc.record({ model: fc.constant<string>(FIX_MODEL) }),
    fc.record({ type: fc.constant('not_found_error'), model: fc.constant<string>(FIX_MODEL) }),
  )
  .map(
    (options) =>
      new Op(
        `dlq retry${'type' in options ? ` --type ${options.type}` : ''}${'model' in options ? ` --model ${options.model}` : ''}`,
        () => true,
        async (_m, w) => {
          const r = await retryDeadLetters(w.runtime, options);
          return `requeued ${r.requeued}, dropped ${r.dropped}, resumed ${r.resumed}`;
        },
      ),
  );

const pauseCmd = fc.constant(
  new Op(
    'pause',
    () => true,
    async (_m, w) => void (await pauseQueue(w.runtime)),
  ),
);
const resumeCmd = fc.constant(
  new Op(
    'resume',
    () => true,
    async (_m, w) => void (await resumeQueue(w.runtime)),
  ),
);

const startWorkerCmd = fc.constant(
  new Op(
    'worker start',
    () => true,
    async (_m, w) => {
      if (w.pool.running >= 3) return 'already 3';
      await w.pool.start();
      return undefined;
    },
  ),
);
const stopWorkerCmd = fc.constant(
  new Op(
    'worker stop',
    () => true,
    async (_m, w) => void (await w.pool.stop()),
  ),
);

/** What Bull Board's buttons do to the requests queue: remove a job, clean a state, empty. */
const boardCmd = fc
  .record({
    kind: fc.constantFrom('remove', 'clean wait', 'clean delayed', 'clean completed', 'drain'),
    pick: fc.nat(200),
  })
  .map(
    ({ kind, pick }) =>
      new Op(
        `board ${kind}${kind === 'remove' ? ` #${pick}` : ''}`,
        () => true,
        async (_m, w) => {
          const queue = w.runtime.requests;
          switch (kind) {
            case 'remove': {
              const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, 200);
              const job = jobs.length > 0 ? jobs[pick % jobs.length] : undefined;
              if (!job) return 'no job';
              await job.remove();
              return `removed ${job.id}`;
            }
            case 'drain':
              await queue.drain();
              return;
            default: {
              const state = kind.slice('clean '.length) as 'wait' | 'delayed' | 'completed';
              // Bull Board passes a 5 s grace; 0 here, so that the short runs' jobs qualify.
              const removed = await queue.clean(0, Number.MAX_SAFE_INTEGER, state);
              return `${removed.length} removed`;
            }
          }
        },
      ),
  );

const faultCmd = fc
  .oneof(
    fc.constant({ kind: 'credits out' as const }),
    fc.constant({ kind: 'top up' as const }),
    {
      // Weighted up: a valid model's breaker trips only when the burst meets its canary or 3 in a row.
      arbitrary: fc.record({ kind: fc.constant('404 burst' as const), n: fc.integer({ min: 1, max: 4 }) }),
      weight: 3,
    },
    fc.constant({ kind: '429 storm' as const }),
    fc.constant({ kind: '529 storm' as const }),
    fc.record({ kind: fc.constant('latency spike' as const), n: fc.integer({ min: 300, max: 1500 }) }),
    fc.constant({ kind: 'calm' as const }),
  )
  .map(
    (f) =>
      new Op(
        `fault ${f.kind}${'n' in f ? ` ${f.n}` : ''}`,
        () => true,
        async (_m, w) => {
          const c = w.emulator.control;
          switch (f.kind) {
            case 'credits out':
              c.setCredits({ balance: 0 });
              return;
            case 'top up':
              if (c.stats().creditBalance !== null) c.topUp(1_000_000);
              return;
            case '404 burst':
              c.setFaults({ script: Array.from({ length: f.n }, () => 'not_found_error' as const) });
              return;
            case '429 storm':
              c.setFaults({ probabilities: { rate_limit_error: 0.6 }, retryAfterSeconds: 1 });
              return;
            case '529 storm':
              c.setFaults({ probabilities: { overloaded_error: 0.6 } });
              return;
            case 'latency spike':
              c.setLatency({ fixedMs: f.n, jitterMs: 100 });
              return;
            case 'calm':
              c.setFaults({});
              c.setLatency(BASE_LATENCY);
              return;
          }
        },
      ),
  );

const waitCmd = fc.integer({ min: 50, max: 1200 }).map(
  (ms) =>
    new Op(
      `wait ${ms}ms`,
      () => true,
      // eslint-disable-next-line no-restricted-syntax -- the operation is time passing itself.
      async () => void (await sleep(ms)),
    ),
);

/** Extra commands of a process-level run (the soak): kills and Redis restarts. */
export type ExtraCommands = Array<fc.WeightedArbitrary<Cmd>>;

const BASE_COMMANDS: Record<string, fc.WeightedArbitrary<Cmd>> = {
  submit: { arbitrary: submitCmd, weight: 6 },
  resubmit: { arbitrary: resubmitCmd, weight: 3 },
  'worker-start': { arbitrary: startWorkerCmd, weight: 3 },
  'worker-stop': { arbitrary: stopWorkerCmd, weight: 1 },
  cancel: { arbitrary: cancelCmd, weight: 2 },
  delete: { arbitrary: deleteCmd, weight: 3 },
  'dlq-retry': { arbitrary: dlqRetryCmd, weight: 2 },
  pause: { arbitrary: pauseCmd, weight: 1 },
  resume: { arbitrary: resumeCmd, weight: 1 },
  board: { arbitrary: boardCmd, weight: 2 },
  fault: { arbitrary: faultCmd, weight: 3 },
  wait: { arbitrary: waitCmd, weight: 4 },
};

/**
 * The weighted operations, less the kinds named in `exclude` (e.g. `board`, to look for other
 * findings while one that the Bull Board removals keep finding is not fixed yet).
 */
export function commandArbitraries(
  extra: ExtraCommands = [],
  exclude: readonly string[] = [],
): Array<fc.WeightedArbitrary<Cmd>> {
  return [
    ...Object.entries(BASE_COMMANDS)
      .filter(([name]) => !exclude.includes(name))
      .map(([, c]) => c),
    ...extra,
  ];
}

export function commandsArbitrary(
  maxCommands: number,
  extra: ExtraCommands = [],
  exclude: readonly string[] = [],
  /** fast-check's `replayPath` of a reported counterexample (with its seed and path). */
  replayPath?: string,
) {
  // One weighted choice (fc.commands alone would pick each kind equally often).
  return fc.commands([fc.oneof(...commandArbitraries(extra, exclude))], {
    maxCommands,
    size: 'max',
    ...(replayPath ? { replayPath } : {}),
  });
}

export { Op };
