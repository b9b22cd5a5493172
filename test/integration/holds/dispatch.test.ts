import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Holds, SHARE_REASON } from '../../../src/queue/holds.js';
import { requestJobId } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { locateRequests, REQUEST_PLACES } from '../../../src/worker/request-places.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { dispatchAll } from '../../helpers/dispatch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

let runtime: Runtime;

beforeEach(async () => {
  runtime = await testRuntime('dispatch');
});

afterEach(async () => {
  await disposeRuntime(runtime);
});

const placeName = (i: number) => (i < 0 ? 'lost' : REQUEST_PLACES[i]!.name);

describe('dispatch: held requests become jobs exactly once', () => {
  it('a take whose dispatcher lost its lock stays in a lawful place, and the next dispatch sends it flagged resumed', async () => {
    const requests = Array.from({ length: 40 }, (_, i) => request(`d${i}`, `Dispatch ${i}`));
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    const holds = new Holds(runtime);
    const open = requests.map((r) => {
      const jobId = requestJobId(batchId, r.custom_id, 0);
      return { batchId, customId: r.custom_id, gen: 0, inc: 0, jobId };
    });
    const context = { keys: runtime.keys, holdReasons: await holds.reasons(batchId) };
    const places = async () => (await locateRequests(runtime.redis, context, open)).map(placeName);
    expect(new Set(await places())).toEqual(new Set(['held']));
    // What /metrics reports as held (Bull Board shows none of them).
    expect(await holds.heldOf([batchId])).toBe(40);

    // The dispatcher takes a page, then finds its lock gone (another took over): it adds nothing.
    expect(await holds.dispatch(batchId, 10, () => Promise.resolve(false))).toBe(0);
    const after = await places();
    expect(after.filter((p) => p === 'dispatching')).toHaveLength(10);
    expect(after.filter((p) => p === 'held')).toHaveLength(30);
    expect(await runtime.requests.count()).toBe(0);

    // The next holder sends that page first, each job flagged resumed (it may have been added and
    // run already: its worker looks for a result first); then the rest, unflagged.
    expect(await holds.dispatch(batchId, 10)).toBe(10);
    const first = await runtime.requests.getWaiting(0, -1);
    expect(first).toHaveLength(10);
    expect(first.every((job) => job.data.resumed === true)).toBe(true);
    expect(await runtime.redis.exists(runtime.keys.dispatching(batchId))).toBe(0);
    expect(await dispatchAll(runtime, batchId)).toBe(30);
    const all = await runtime.requests.getWaiting(0, -1);
    expect(all).toHaveLength(40);
    expect(all.filter((job) => job.data.resumed === true)).toHaveLength(10);
    expect(new Set(await places())).toEqual(new Set(['queued']));
    expect(await holds.heldOf([batchId])).toBe(0);
    expect(await runtime.redis.exists(runtime.keys.held(batchId, SHARE_REASON))).toBe(0);
  });

  it('two dispatchers at once (a lock that expired under a stalled holder): every request one job, none left held', async () => {
    const N = 3_000;
    const requests = Array.from({ length: N }, (_, i) => request(`p${i}`, `Parallel ${i}`));
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    const a = new Holds(runtime);
    const b = new Holds(runtime);
    const drain = async (holds: Holds) => {
      let total = 0;
      for (let n = -1; n !== 0; total += n) n = await holds.dispatch(batchId, 700);
      return total;
    };
    const [sentA, sentB] = await Promise.all([drain(a), drain(b)]);
    // A page left over and re-taken by the other would count twice; BullMQ keeps one job per id.
    expect(sentA + sentB).toBeGreaterThanOrEqual(N);
    expect(await runtime.requests.count()).toBe(N);
    expect(await runtime.redis.exists(runtime.keys.held(batchId, SHARE_REASON))).toBe(0);
    expect(await runtime.redis.exists(runtime.keys.dispatching(batchId))).toBe(0);
  }, 60_000);
});
