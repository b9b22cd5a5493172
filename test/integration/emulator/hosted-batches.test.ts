import type Anthropic from '@anthropic-ai/sdk';
import { AnthropicError, BadRequestError, NotFoundError, RateLimitError, APIError } from '@anthropic-ai/sdk';
import { describe, expect, it, vi } from 'vitest';
import { replyFingerprint } from '../../../src/emulator/index.js';
import { KEY, emulator, failure, manualClock, sdk } from './helpers.js';

/** New tests use a current model (older ones draw SDK deprecation warnings). */
const MODEL = 'claude-sonnet-4-6';

function params(content: string, extra: Record<string, unknown> = {}) {
  return {
    model: MODEL,
    max_tokens: 256,
    messages: [{ role: 'user' as const, content }],
    ...extra,
  } satisfies Anthropic.MessageCreateParamsNonStreaming;
}

function request(customId: string, content: string, extra: Record<string, unknown> = {}) {
  return { custom_id: customId, params: params(content, extra) };
}

async function results(
  client: Anthropic,
  id: string,
): Promise<Map<string, Anthropic.Messages.MessageBatchResult>> {
  const out = new Map<string, Anthropic.Messages.MessageBatchResult>();
  for await (const line of await client.messages.batches.results(id)) {
    expect(out.has(line.custom_id)).toBe(false);
    out.set(line.custom_id, line.result);
  }
  return out;
}

async function ended(
  client: Anthropic,
  id: string,
  timeout = 5_000,
): Promise<Anthropic.Messages.MessageBatch> {
  return vi.waitFor(
    async () => {
      const batch = await client.messages.batches.retrieve(id);
      expect(batch.processing_status).toBe('ended');
      return batch;
    },
    { timeout, interval: 10 },
  );
}

function errorType(result: Anthropic.Messages.MessageBatchResult | undefined): string | null {
  return result?.type === 'errored' ? result.error.error.type : null;
}

describe('hosted Message Batches', () => {
  it('process each request on the live path: same replies, usage, markers and fault plan', async () => {
    const emu = await emulator({
      seed: 3,
      batchesStartDelayMs: 20,
      batchesProcessingMs: 2,
      faults: { script: ['ok', 'ok', 'overloaded_error'] },
      forbiddenModels: ['claude-opus-4-6'],
    });
    const client = sdk(emu);
    const live = await emulator({ seed: 3 });
    const requests = [
      request('plain', 'What is the capital of France?'),
      request('cut', '@@stop:max_tokens@@ go on', { max_tokens: 12 }),
      request('overloaded', '@@fault:overloaded_error@@ hi'),
      request('invalid', 'no max_tokens', { max_tokens: 0 }),
      // Third to reach the fault plan (markers and refusals before it take no step): its third step fails it.
      request('scripted', 'the script fails this one'),
      request('unknown-model', 'hi', { model: 'claude-nope-1' }),
      request('forbidden', 'hi', { model: 'claude-opus-4-6' }),
      request('code', '@@fault:ramp_limit_exceeded@@ hi'),
      request('reset', '@@fault:connection_reset@@ hi'),
    ];
    const created = await client.messages.batches.create({ requests });
    expect(created).toMatchObject({
      type: 'message_batch',
      processing_status: 'in_progress',
      request_counts: { processing: 9, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      ended_at: null,
      cancel_initiated_at: null,
      archived_at: null,
      results_url: null,
    });
    expect(created.id).toMatch(/^msgbatch_/);
    expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(24 * 60 * 60 * 1000);

    const batch = await ended(client, created.id);
    expect(batch.request_counts).toEqual({
      processing: 0,
      succeeded: 2,
      errored: 7,
      canceled: 0,
      expired: 0,
    });
    expect(batch.results_url).toBe(`${emu.url}/v1/messages/batches/${created.id}/results`);
    expect(Date.parse(batch.ended_at ?? '')).toBeGreaterThanOrEqual(Date.parse(batch.created_at));

    const byId = await results(client, created.id);
    expect([...byId.keys()].sort()).toEqual(requests.map((r) => r.custom_id).sort());
    const plain = byId.get('plain');
    if (plain?.type !== 'succeeded') throw new Error(`plain: ${JSON.stringify(plain)}`);
    // The same prompt live (another emulator, same seed) gets the same reply and usage, tier aside.
    const liveReply = await sdk(live).messages.create(params('What is the capital of France?'));
    expect(plain.message.content).toEqual(liveReply.content);
    expect(plain.message.usage).toEqual({ ...liveReply.usage, service_tier: 'batch' });
    expect(plain.message.id).toMatch(/^msg_/);
    const cut = byId.get('cut');
    expect(cut?.type === 'succeeded' && cut.message.stop_reason).toBe('max_tokens');
    expect(errorType(byId.get('overloaded'))).toBe('overloaded_error');
    expect(errorType(byId.get('invalid'))).toBe('invalid_request_error');
    const invalid = byId.get('invalid');
    expect(invalid?.type === 'errored' && invalid.error.error.message).toBe(
      'max_tokens: Input should be greater than or equal to 1',
    );
    expect(errorType(byId.get('scripted'))).toBe('overloaded_error');
    expect(errorType(byId.get('unknown-model'))).toBe('not_found_error');
    expect(errorType(byId.get('forbidden'))).toBe('permission_error');
    const code = byId.get('code');
    expect(code?.type === 'errored' && code.error).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error', details: { error_code: 'ramp_limit_exceeded' } },
    });
    expect(errorType(byId.get('reset'))).toBe('api_error');

    // Hosted requests are logged, marked with their batch, and counted apart from HTTP requests.
    const stats = emu.control.stats();
    expect(stats.hostedBatches).toMatchObject({ created: 1, deleted: 0, inProgress: 0, ended: 1 });
    expect(stats.hostedRequests).toMatchObject({ requests: 9, succeeded: 2, errored: 7 });
    expect(stats.byPath['/v1/messages']).toBeUndefined();
    const hosted = emu.control.log().filter((e) => e.batchId !== null);
    expect(hosted).toHaveLength(9);
    expect(hosted.every((e) => e.batchId === created.id && e.path === '/v1/messages/batches')).toBe(true);
    expect(
      hosted.find((e) => e.promptHash === replyFingerprint(params('What is the capital of France?'))),
    ).toMatchObject({ status: 200, attempt: 1 });
  });

  it('charge credits and refuse hosted requests once they run out, as live calls are', async () => {
    const emu = await emulator({ batchesStartDelayMs: 0, batchesProcessingMs: 0, credits: { balance: 2 } });
    const client = sdk(emu);
    const created = await client.messages.batches.create({
      requests: ['a', 'b', 'c'].map((id) => request(id, `prompt ${id}`)),
    });
    const batch = await ended(client, created.id);
    expect(batch.request_counts).toMatchObject({ succeeded: 2, errored: 1 });
    const byId = await results(client, created.id);
    const refused = [...byId.values()].find((r) => r.type === 'errored');
    expect(refused?.type === 'errored' && refused.error.error.message).toMatch(/credit balance is too low/);
    expect(emu.control.stats().creditBalance).toBe(0);
  });

  it('list newest first, page by page, with before_id and after_id', async () => {
    const emu = await emulator({ batchesStartDelayMs: 60_000 });
    const client = sdk(emu);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.messages.batches.create({ requests: [request(`r${i}`, `p${i}`)] })).id);
    }
    const newest = [...ids].reverse();
    const nth = (i: number): string => newest[i] ?? '';
    const first = await client.messages.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual(newest.slice(0, 2));
    expect(first).toMatchObject({ has_more: true, first_id: newest[0], last_id: newest[1] });

    const all: string[] = [];
    for await (const b of client.messages.batches.list({ limit: 2 })) all.push(b.id);
    expect(all).toEqual(newest);

    const after = await client.messages.batches.list({ after_id: nth(2), limit: 5 });
    expect(after.data.map((b) => b.id)).toEqual(newest.slice(3));
    expect(after.has_more).toBe(false);
    const before = await client.messages.batches.list({ before_id: nth(3), limit: 2 });
    expect(before.data.map((b) => b.id)).toEqual(newest.slice(1, 3));
    expect(before.has_more).toBe(true);
    const empty = await client.messages.batches.list({ after_id: nth(4) });
    expect(empty).toMatchObject({ data: [], has_more: false, first_id: null, last_id: null });

    const bad = await failure(client.messages.batches.list({ limit: 0 }));
    expect(bad).toBeInstanceOf(BadRequestError);
  });

  it('cancel mid-processing: the request in progress finishes, the rest end canceled', async () => {
    const clock = manualClock();
    const emu = await emulator({ clock: clock.now, batchesStartDelayMs: 100, batchesProcessingMs: 10 });
    const client = sdk(emu);
    const requests = Array.from({ length: 20 }, (_, i) => request(`r${i}`, `prompt ${i}`));
    const created = await client.messages.batches.create({ requests });
    clock.advance(125); // two finished (at 110 and 120), the third in progress until 130
    const canceling = await client.messages.batches.cancel(created.id);
    expect(canceling).toMatchObject({
      processing_status: 'canceling',
      request_counts: { processing: 20, succeeded: 0, canceled: 0 },
      cancel_initiated_at: new Date(clock.now()).toISOString(),
    });
    clock.advance(4);
    expect((await client.messages.batches.retrieve(created.id)).processing_status).toBe('canceling');
    clock.advance(1);
    const batch = await client.messages.batches.retrieve(created.id);
    expect(batch).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 3, errored: 0, canceled: 17, expired: 0 },
      ended_at: new Date(clock.now()).toISOString(),
    });
    const byId = await results(client, created.id);
    expect(byId.size).toBe(20);
    expect(['r0', 'r1', 'r2'].map((id) => byId.get(id)?.type)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(byId.get('r3')).toEqual({ type: 'canceled' });
    // Canceling again changes nothing.
    expect((await client.messages.batches.cancel(created.id)).request_counts.canceled).toBe(17);
  });

  it('expire what is unprocessed when the window closes', async () => {
    const clock = manualClock();
    const emu = await emulator({
      clock: clock.now,
      batchesStartDelayMs: 0,
      batchesProcessingMs: 10,
      batchesExpiryMs: 45,
    });
    const client = sdk(emu);
    const created = await client.messages.batches.create({
      requests: Array.from({ length: 10 }, (_, i) => request(`r${i}`, `prompt ${i}`)),
    });
    clock.advance(44);
    expect((await client.messages.batches.retrieve(created.id)).processing_status).toBe('in_progress');
    clock.advance(1);
    const batch = await client.messages.batches.retrieve(created.id);
    expect(batch).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 4, expired: 6 },
      ended_at: batch.expires_at,
    });
    const byId = await results(client, created.id);
    expect([...byId.values()].filter((r) => r.type === 'expired')).toHaveLength(6);
  });

  it('delete only ended batches; results only once ended', async () => {
    const emu = await emulator({ batchesStartDelayMs: 60_000 });
    const client = sdk(emu);
    const created = await client.messages.batches.create({
      requests: [request('a', 'x'), request('b', 'y')],
    });
    const refused = await failure(client.messages.batches.delete(created.id));
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as APIError).message).toMatch(
      /cannot be deleted while its processing_status is in_progress/,
    );
    // The SDK itself refuses to fetch results without a results_url; the URL answers 404 meanwhile.
    expect(await failure(client.messages.batches.results(created.id))).toBeInstanceOf(AnthropicError);
    const direct = await fetch(`${emu.url}/v1/messages/batches/${created.id}/results`, {
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    });
    expect(direct.status).toBe(404);
    expect(((await direct.json()) as { error: { type: string } }).error.type).toBe('not_found_error');

    // Canceled before it started: nothing is in progress, so it ends at once.
    await client.messages.batches.cancel(created.id);
    const batch = await client.messages.batches.retrieve(created.id);
    expect(batch.request_counts).toMatchObject({ canceled: 2, processing: 0 });
    expect(await client.messages.batches.delete(created.id)).toEqual({
      id: created.id,
      type: 'message_batch_deleted',
    });
    expect(await failure(client.messages.batches.retrieve(created.id))).toBeInstanceOf(NotFoundError);
    expect((await client.messages.batches.list()).data).toEqual([]);
    expect(emu.control.stats().hostedBatches).toMatchObject({ created: 1, deleted: 1 });
  });

  it('refuse a whole batch over the configured count or size, or with bad custom_ids', async () => {
    const emu = await emulator({ batchesMaxRequests: 3, batchesMaxBytes: 2_000 });
    const client = sdk(emu);
    const four = Array.from({ length: 4 }, (_, i) => request(`r${i}`, 'x'));
    const tooMany = await failure(client.messages.batches.create({ requests: four }));
    expect(tooMany).toBeInstanceOf(BadRequestError);
    expect((tooMany as APIError).message).toMatch(
      /requests: List should have at most 3 items after validation, not 4/,
    );
    expect(await client.messages.batches.create({ requests: four.slice(0, 3) })).toMatchObject({
      request_counts: { processing: 3 },
    });

    const big = await failure(
      client.messages.batches.create({ requests: [request('big', 'x'.repeat(3_000))] }),
    );
    expect(big).toBeInstanceOf(APIError);
    expect((big as APIError).status).toBe(413);
    expect((big as APIError).type).toBe('request_too_large');

    const badId = await failure(client.messages.batches.create({ requests: [request('no spaces', 'x')] }));
    expect((badId as APIError).message).toMatch(/requests\.0\.custom_id: String should match pattern/);
    const dup = await failure(
      client.messages.batches.create({ requests: [request('a', 'x'), request('a', 'y')] }),
    );
    expect((dup as APIError).message).toMatch(
      /requests\.1\.custom_id: \\"a\\" is also the custom_id of requests\.0/,
    );
    expect(emu.control.stats().hostedBatches.created).toBe(1);
  });

  it('answer 429 with retry-after while too many requests wait across batches', async () => {
    const emu = await emulator({
      batchesQueueLimit: 5,
      batchesStartDelayMs: 60_000,
      batchesProcessingMs: 500,
    });
    const client = sdk(emu);
    const batch = (n: number, tag: string) => ({
      requests: Array.from({ length: n }, (_, i) => request(`${tag}${i}`, `${tag} ${i}`)),
    });
    await client.messages.batches.create(batch(3, 'a'));
    await client.messages.batches.create(batch(2, 'b'));
    const refused = await failure(client.messages.batches.create(batch(2, 'c')));
    expect(refused).toBeInstanceOf(RateLimitError);
    expect((refused as RateLimitError).headers.get('retry-after')).toBe('1');
    expect(emu.control.stats()).toMatchObject({
      rateLimited: { batch_queue: 1 },
      hostedBatches: { created: 2, waitingRequests: 5 },
    });
    // Canceling one frees its place in the queue.
    const [newest] = (await client.messages.batches.list()).data;
    await client.messages.batches.cancel(newest?.id ?? '');
    expect((await client.messages.batches.create(batch(2, 'c'))).request_counts.processing).toBe(2);
  });

  it('take new settings from the control API for batches created afterwards', async () => {
    const clock = manualClock();
    const emu = await emulator({ clock: clock.now, batchesStartDelayMs: 0, batchesProcessingMs: 1 });
    const client = sdk(emu);
    const answer = await fetch(`${emu.url}/_emulator/batches`, {
      method: 'PUT',
      body: JSON.stringify({ processingMs: 100, queueLimit: 10 }),
    });
    expect(await answer.json()).toMatchObject({ startDelayMs: 0, processingMs: 100, queueLimit: 10 });
    const created = await client.messages.batches.create({
      requests: [request('a', 'x'), request('b', 'y')],
    });
    clock.advance(199);
    expect((await client.messages.batches.retrieve(created.id)).processing_status).toBe('in_progress');
    clock.advance(1);
    expect((await client.messages.batches.retrieve(created.id)).processing_status).toBe('ended');
    expect(() => emu.control.setBatches({ processingMs: -1 })).toThrow(/batches\.processingMs: got -1/);
    const bad = await fetch(`${emu.url}/_emulator/batches`, { method: 'PUT', body: '{"queueLimit":0}' });
    expect(bad.status).toBe(400);
  });
  it('hold the answer to a create while the batch already exists (createReplyDelayMs)', async () => {
    const emu = await emulator({
      batchesStartDelayMs: 0,
      batchesProcessingMs: 0,
      batchesCreateReplyDelayMs: 400,
    });
    const client = sdk(emu);
    const pending = client.messages.batches.create({ requests: [request('a', 'x'), request('b', 'y')] });
    // Listed and counted before its creator hears back: the window a killed client leaves behind.
    const listed = await vi.waitFor(
      async () => {
        const [first] = (await client.messages.batches.list()).data;
        expect(first?.request_counts.succeeded).toBe(2);
        return first!;
      },
      { timeout: 2_000, interval: 20 },
    );
    expect(emu.control.stats().hostedBatches.created).toBe(1);
    const created = await pending;
    expect(created.id).toBe(listed.id);
    expect(created.processing_status).toBe('ended');
    // Off again over HTTP: the next create answers at once.
    const answer = await fetch(`${emu.url}/_emulator/batches`, {
      method: 'PUT',
      body: JSON.stringify({ createReplyDelayMs: 0 }),
    });
    expect(await answer.json()).toMatchObject({ createReplyDelayMs: 0 });
    const t0 = performance.now();
    await client.messages.batches.create({ requests: [request('c', 'z')] });
    expect(performance.now() - t0).toBeLessThan(400);
    expect(emu.control.stats().hostedBatches.created).toBe(2);
  });

  it('pause a results download midway (resultsPauseAfterLines, resultsPauseMs); a client gone meanwhile is dropped', async () => {
    const emu = await emulator({
      batchesStartDelayMs: 0,
      batchesProcessingMs: 0,
      batchesResultsPauseAfterLines: 3,
      batchesResultsPauseMs: 300,
    });
    const client = sdk(emu);
    const requests = Array.from({ length: 8 }, (_, i) => request(`r${i}`, `line ${i}`));
    const { id } = await client.messages.batches.create({ requests });
    await ended(client, id);
    const at: number[] = [];
    const seen: string[] = [];
    const t0 = performance.now();
    for await (const line of await client.messages.batches.results(id)) {
      at.push(performance.now() - t0);
      seen.push(line.custom_id);
    }
    expect(seen.sort()).toEqual(requests.map((r) => r.custom_id).sort());
    // Three lines, then the pause, then the rest.
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(250);

    // A client that stops reading during the pause: the server drops it and serves the next one.
    const url = `${emu.url}/v1/messages/batches/${id}/results`;
    const headers = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
    const abort = new AbortController();
    const partial = await fetch(url, { headers, signal: abort.signal });
    const reader = partial.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    while (text.split('\n').length <= 3) {
      const { value } = (await reader.read()) as { value?: Uint8Array };
      text += decoder.decode(value);
    }
    abort.abort();
    expect(text.trim().split('\n')).toHaveLength(3);
    await fetch(`${emu.url}/_emulator/batches`, {
      method: 'PUT',
      body: JSON.stringify({ resultsPauseAfterLines: null }),
    });
    const whole = await (await fetch(url, { headers })).text();
    expect(whole.trim().split('\n')).toHaveLength(8);
    const bad = await fetch(`${emu.url}/_emulator/batches`, {
      method: 'PUT',
      body: '{"resultsPauseMs":-1}',
    });
    expect(bad.status).toBe(400);
  });
});
