import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type RunningDashboard } from '../../../src/dashboard/index.js';
import { requestJobId } from '../../../src/queue/jobs.js';
import type { Runtime } from '../../../src/runtime.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { seedBatch } from './fixtures.js';

let runtime: Runtime;
let readOnly: RunningDashboard;
let writable: RunningDashboard;
let batchId: string;

beforeAll(async () => {
  runtime = await testRuntime('dash-readonly');
  batchId = await seedBatch(runtime);
  readOnly = await startDashboard(runtime, { port: 0, readOnly: true });
  writable = await startDashboard(runtime, { port: 0 });
});

afterAll(async () => {
  await readOnly?.close();
  await writable?.close();
  if (runtime) await disposeRuntime(runtime);
});

/** Everything a change could touch: counts of both queues, the pause flag, one job of each. */
async function queueState() {
  const [requests, deadLetters, paused, openJob, deadJob] = await Promise.all([
    runtime.requests.getJobCounts(),
    runtime.deadLetters.getJobCounts(),
    runtime.requests.isPaused(),
    runtime.requests.getJob(requestJobId(batchId, 'req-9', 0)),
    runtime.deadLetters.getJob(requestJobId(batchId, 'req-4', 0)),
  ]);
  return { requests, deadLetters, paused, openJob: openJob?.data, deadJob: deadJob?.data };
}

describe('dashboard --read-only', () => {
  it('refuses every change through Bull Board and our routes with 403, and changes nothing', async () => {
    const before = await queueState();
    expect(before.openJob).toBeDefined();
    expect(before.deadJob).toBeDefined();
    const open = encodeURIComponent(requestJobId(batchId, 'req-9', 0));
    const dead = encodeURIComponent(requestJobId(batchId, 'req-4', 0));
    const json = { 'content-type': 'application/json' };
    const attempts: [string, string, unknown?][] = [
      ['PUT', 'queues/api/queues/pause'],
      ['PUT', 'queues/api/queues/requests/pause'],
      ['PUT', 'queues/api/queues/requests/promote'],
      ['PUT', 'queues/api/queues/requests/empty'],
      ['PUT', 'queues/api/queues/requests/clean/completed'],
      ['PUT', `queues/api/queues/requests/${open}/clean`],
      ['PUT', `queues/api/queues/requests/${open}/promote`],
      ['PATCH', `queues/api/queues/requests/${open}/update-data`, { data: { hacked: true } }],
      ['POST', 'queues/api/queues/requests/add', { name: 'x', data: { hacked: true }, options: {} }],
      ['PUT', 'queues/api/queues/dead-letter/retry/waiting'],
      ['PUT', `queues/api/queues/dead-letter/${dead}/retry`],
      ['PUT', 'queues/api/queues/dead-letter/obliterate', { force: true }],
      ['POST', 'api/pause'],
      ['POST', 'api/resume'],
    ];
    for (const [method, route, body] of attempts) {
      const res = await fetch(`${readOnly.url}${route}`, {
        method,
        headers: json,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      expect(res.status, `${method} ${route}`).toBe(403);
    }
    expect(await queueState()).toEqual(before);

    // Resume is refused too: a queue paused elsewhere stays paused.
    await runtime.requests.pause();
    expect((await fetch(`${readOnly.url}api/resume`, { method: 'POST' })).status).toBe(403);
    expect(await runtime.requests.isPaused()).toBe(true);
    await runtime.requests.resume();

    // Bull Board itself runs both queues in read-only mode (its UI hides the buttons).
    const board = (await (await fetch(`${readOnly.url}queues/api/queues`)).json()) as {
      queues: { name: string; readOnlyMode: boolean }[];
    };
    expect(board.queues.map((q) => [q.name, q.readOnlyMode]).sort()).toEqual([
      ['dead-letter', true],
      ['requests', true],
    ]);
    const page = await (await fetch(readOnly.url)).text();
    expect(page).toContain('read-only');
    expect(page).not.toContain('action="api/pause"');
  });

  it('without --read-only, the same routes work (and refuse cross-site forms)', async () => {
    const board = (await (await fetch(`${writable.url}queues/api/queues`)).json()) as {
      queues: { readOnlyMode: boolean }[];
    };
    expect(board.queues.every((q) => !q.readOnlyMode)).toBe(true);
    expect((await fetch(`${writable.url}queues/api/queues/requests/pause`, { method: 'PUT' })).status).toBe(
      200,
    );
    expect(await runtime.requests.isPaused()).toBe(true);
    expect((await fetch(`${writable.url}queues/api/queues/requests/resume`, { method: 'PUT' })).status).toBe(
      200,
    );
    expect(await runtime.requests.isPaused()).toBe(false);

    // A form on another site posting to the dashboard is refused.
    for (const headers of [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: writable.url.slice(0, -1) },
    ] as Record<string, string>[]) {
      expect((await fetch(`${writable.url}api/pause`, { method: 'POST', headers })).status).toBe(403);
      expect(await runtime.requests.isPaused()).toBe(false);
    }

    const paused = await fetch(`${writable.url}api/pause`, {
      method: 'POST',
      headers: { accept: 'application/json' },
    });
    expect(await paused.json()).toEqual({ paused: true });
    const page = await (await fetch(writable.url)).text();
    expect(page).toContain('Queue PAUSED by hand');
    expect(page).toContain('action="api/resume"');
    const resumed = await fetch(`${writable.url}api/resume`, {
      method: 'POST',
      headers: { accept: 'application/json', origin: writable.url.slice(0, -1) },
    });
    expect(await resumed.json()).toEqual({ paused: false });
    expect(await fetch(`${writable.url}api/breakers`).then((r): Promise<unknown> => r.json())).toEqual({
      key: null,
      models: [],
    });
  });
});
