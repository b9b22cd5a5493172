import type { RedisClient } from '../redis/connection.js';
import type { KeyLayout } from '../redis/keys.js';

/** A request of a batch with no results line yet, at its current generation. */
export interface OpenRequest {
  batchId: string;
  customId: string;
  gen: number;
  /** The batch's incarnation (bumped by each delete of its id): part of the job id. */
  inc: number;
  /** Its job id in the main queue (and of its dead-letter entry). */
  jobId: string;
}

/** What a probe may read about the batch once, before probing its requests. */
export interface PlaceContext {
  keys: KeyLayout;
  /** The batch's hold reasons with requests still held (see `Holds`). */
  holdReasons: readonly string[];
  /** Numbers of the batch's hosted chunks not done (issue 14, src/hosted/chunks.ts). */
  openChunks?: readonly number[];
}

/**
 * One Redis read whose truthy reply (non-null, non-zero) says the request is there. Reads only:
 * they run in bulk, hundreds of requests per pipeline.
 */
type Probe =
  | { cmd: 'exists'; key: string }
  | { cmd: 'zscore'; key: string; member: string }
  | { cmd: 'hexists'; key: string; field: string };

/**
 * What the reconciler does with a request found in a place: `none` (a lawful place: leave it);
 * `failed-outcome` (a job BullMQ failed by itself: the failed-job sweeper's outcome);
 * `requeue-finished` (a finished job with no result: back to the queue, as BullMQ's retry);
 * `finalize-dead-letter` (its dead-letter entry is written, its errored line not yet: write it).
 * A request found in no place at all is lost: it ends (see the reconciler).
 */
export type PlaceRecovery = 'none' | 'failed-outcome' | 'requeue-finished' | 'finalize-dead-letter';

/** The request is in the place iff every `all` read and (when given) at least one `any` read is truthy. */
interface PlaceTest {
  all: readonly Probe[];
  any?: Probe[];
}

export interface RequestPlace {
  /** Shown in logs, `status` and metrics. */
  name: string;
  /** How to tell, for one request; null when it cannot be there (e.g. a batch holding nothing). */
  probe(context: PlaceContext, request: OpenRequest): PlaceTest | null;
  recovery: PlaceRecovery;
}

const job = (keys: KeyLayout, queue: string, id: string) => `${keys.bullPrefix}:${queue}:${id}`;
const set = (keys: KeyLayout, queue: string, state: string) => `${keys.bullPrefix}:${queue}:${state}`;

/**
 * Every place a pending request (no results line) may lawfully be, or be recovered from, in the
 * order they are tested: the first that holds it wins. Adding a place (a hosted batch, say) is
 * one row here. The BullMQ states wait, active, delayed (a
 * retry), prioritized and paused are one place (`queued`): the job exists and is not finished
 * (telling the lists apart would cost a scan of each). A dead-letter entry whose errored line is
 * missing wins over a live job: writing that line from the entry is what the job's own worker
 * does, idempotently.
 */
export const REQUEST_PLACES: readonly RequestPlace[] = [
  {
    name: 'failed',
    probe: ({ keys }, r) => ({
      all: [{ cmd: 'zscore', key: set(keys, 'requests', 'failed'), member: r.jobId }],
    }),
    recovery: 'failed-outcome',
  },
  {
    name: 'completed',
    probe: ({ keys }, r) => ({
      all: [{ cmd: 'zscore', key: set(keys, 'requests', 'completed'), member: r.jobId }],
    }),
    recovery: 'requeue-finished',
  },
  {
    name: 'dead-lettering',
    probe: ({ keys }, r) => ({ all: [{ cmd: 'exists', key: job(keys, 'dead-letter', r.jobId) }] }),
    recovery: 'finalize-dead-letter',
  },
  // Held, then dispatching, then queued: the order a request moves in (each move creates the next
  // place before it leaves the last), so probes in this order cannot miss one moving meanwhile.
  {
    name: 'held',
    probe: ({ keys, holdReasons }, r) =>
      holdReasons.length === 0
        ? null
        : {
            all: [],
            any: holdReasons.map((reason) => ({
              cmd: 'hexists',
              key: keys.held(r.batchId, reason),
              field: r.jobId,
            })),
          },
    recovery: 'none',
  },
  {
    // Packed into a hosted batch (issue 14): from its packing (one script from the share) until
    // its result line is written or it is held again.
    name: 'hosted',
    probe: ({ keys, openChunks }, r) =>
      !openChunks || openChunks.length === 0
        ? null
        : {
            all: [],
            any: openChunks.map((n) => ({ cmd: 'hexists', key: keys.chunk(r.batchId, n), field: r.jobId })),
          },
    recovery: 'none',
  },
  {
    // Taken by the dispatcher, its job being added; a dispatcher that died left it for the next.
    name: 'dispatching',
    probe: ({ keys }, r) => ({
      all: [{ cmd: 'hexists', key: keys.dispatching(r.batchId), field: r.jobId }],
    }),
    recovery: 'none',
  },
  {
    name: 'queued',
    probe: ({ keys }, r) => ({ all: [{ cmd: 'exists', key: job(keys, 'requests', r.jobId) }] }),
    recovery: 'none',
  },
];

/**
 * Keys whose existence means a request is somewhere after all: the reconciler ends a lost request
 * only while none of them exists (checked in the finalize script itself).
 */
export function presenceKeys(keys: KeyLayout, request: OpenRequest): string[] {
  return [job(keys, 'requests', request.jobId), job(keys, 'dead-letter', request.jobId)];
}

/**
 * The place of each request (index into {@link REQUEST_PLACES}), or -1 when it is in none,
 * from one pipelined round trip for the whole page.
 */
export async function locateRequests(
  redis: RedisClient,
  context: PlaceContext,
  requests: readonly OpenRequest[],
): Promise<number[]> {
  const pipeline = redis.pipeline();
  let n = 0;
  const add = (probe: Probe): number => {
    if (probe.cmd === 'exists') pipeline.exists(probe.key);
    else if (probe.cmd === 'zscore') pipeline.zscore(probe.key, probe.member);
    else pipeline.hexists(probe.key, probe.field);
    return n++;
  };
  // Per request, per place: the reply indexes of its `all` and `any` probes (null: never there).
  const plan = requests.map((request) =>
    REQUEST_PLACES.map((place) => {
      const test = place.probe(context, request);
      return test ? { all: test.all.map(add), any: test.any?.map(add) } : null;
    }),
  );
  const replies = n === 0 ? [] : ((await pipeline.exec()) ?? []);
  const truthy = (i: number): boolean => {
    const [err, value] = replies[i] ?? [new Error('no reply from Redis'), null];
    if (err) throw err;
    return value !== null && value !== 0 && value !== '0';
  };
  return plan.map((places) =>
    places.findIndex(
      (test) => test !== null && test.all.every(truthy) && (test.any === undefined || test.any.some(truthy)),
    ),
  );
}
