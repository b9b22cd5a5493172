import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../../src/emulator/index.js';
import { KEY, MODEL, emulator, params, sdk } from './helpers.js';

const VERSION = '2023-06-01';

interface Answer {
  status: number;
  headers: Headers;
  body: { type?: string; error?: { type: string; message: string }; request_id?: string } & Record<
    string,
    unknown
  >;
}

async function call(
  emu: EmulatorHandle,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Answer> {
  const res = await fetch(`${emu.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...init.headers },
    // null, not undefined: RequestInit.body is `BodyInit | null` (lib.dom), with no undefined.
    body:
      init.body === undefined ? null : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

const authed = { 'x-api-key': KEY, 'anthropic-version': VERSION };

describe('HTTP surface', () => {
  it('accepts x-api-key and Authorization: Bearer; rejects a missing key with 401', async () => {
    const emu = await emulator({ apiKeys: [KEY] });
    const body = params('hi');
    expect((await call(emu, '/v1/messages', { headers: authed, body })).status).toBe(200);
    const bearer = { authorization: `Bearer ${KEY}`, 'anthropic-version': VERSION };
    expect((await call(emu, '/v1/messages', { headers: bearer, body })).status).toBe(200);
    const missing = await call(emu, '/v1/messages', { headers: { 'anthropic-version': VERSION }, body });
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.any(String) },
      request_id: missing.headers.get('request-id'),
    });
  });

  it('missing anthropic-version gives 400 invalid_request_error unless the check is off', async () => {
    const strict = await emulator();
    const answer = await call(strict, '/v1/messages', { headers: { 'x-api-key': KEY }, body: params('hi') });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({
      type: 'invalid_request_error',
      message: expect.stringContaining('anthropic-version'),
    });
    const lenient = await emulator({ anthropicVersionRequired: false });
    expect(
      (await call(lenient, '/v1/messages', { headers: { 'x-api-key': KEY }, body: params('hi') })).status,
    ).toBe(200);
  });

  it.each([
    [{ max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }, 'model: Field required'],
    [
      { model: 42, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
      'model: Input should be a valid string',
    ],
    [{ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, 'max_tokens: Field required'],
    [
      { model: MODEL, max_tokens: 1.5, messages: [{ role: 'user', content: 'x' }] },
      'max_tokens: Input should be a valid integer',
    ],
    [
      { model: MODEL, max_tokens: -1, messages: [{ role: 'user', content: 'x' }] },
      'max_tokens: Input should be greater than or equal to 1',
    ],
    [
      { model: MODEL, max_tokens: 1_000_000, messages: [{ role: 'user', content: 'x' }] },
      'max_tokens: 1000000 > 64000',
    ],
    [{ model: MODEL, max_tokens: 10 }, 'messages: Field required'],
    [{ model: MODEL, max_tokens: 10, messages: [] }, 'messages: at least one message is required'],
    [
      { model: MODEL, max_tokens: 10, messages: [{ role: 'robot', content: 'x' }] },
      "messages.0.role: Input should be 'user' or 'assistant'",
    ],
    [{ model: MODEL, max_tokens: 10, messages: [{ role: 'user' }] }, 'messages.0.content: Field required'],
    [
      { model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'text' }] }] },
      'messages.0.content.0.text',
    ],
    [
      { model: MODEL, max_tokens: 10, stream: 'yes', messages: [{ role: 'user', content: 'x' }] },
      'stream: Input should be a valid boolean',
    ],
    ['{"model": ', 'error parsing the body'],
  ])('validation: %j → %s', async (body, message) => {
    const emu = await emulator();
    const answer = await call(emu, '/v1/messages', { headers: authed, body });
    expect(answer.status).toBe(400);
    expect(answer.body.error?.type).toBe('invalid_request_error');
    expect(answer.body.error?.message).toContain(message);
    expect(answer.body.request_id).toBe(answer.headers.get('request-id'));
  });

  it('413 for a streamed body over maxBodyBytes: the rest is drained, the client reads the answer', async () => {
    const emu = await emulator({ maxBodyBytes: 1024 });
    const url = new URL(emu.url);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: '/v1/messages', method: 'POST', headers: authed },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      // Chunked, no content-length: the server only learns the size while reading.
      for (let i = 0; i < 32; i++) req.write(chunk);
      req.end();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
    // The connection stays usable for the next request.
    expect((await call(emu, '/v1/messages', { headers: authed, body: params('small') })).status).toBe(200);
  });

  it('GET /v1/models lists models in the API shape, pages, and GET /v1/models/{id} answers one', async () => {
    const emu = await emulator({ models: ['claude-a-1', 'claude-b-2', 'claude-c-3'] });
    const list = await call(emu, '/v1/models', { headers: authed });
    expect(list.body).toEqual({
      data: [
        { type: 'model', id: 'claude-a-1', display_name: 'Claude A 1', created_at: expect.any(String) },
        { type: 'model', id: 'claude-b-2', display_name: 'Claude B 2', created_at: expect.any(String) },
        { type: 'model', id: 'claude-c-3', display_name: 'Claude C 3', created_at: expect.any(String) },
      ],
      has_more: false,
      first_id: 'claude-a-1',
      last_id: 'claude-c-3',
    });
    const page = await call(emu, '/v1/models?limit=2', { headers: authed });
    expect(page.body).toMatchObject({ has_more: true, first_id: 'claude-a-1', last_id: 'claude-b-2' });

    const ids: string[] = [];
    for await (const model of sdk(emu).models.list({ limit: 1 })) ids.push(model.id);
    expect(ids).toEqual(['claude-a-1', 'claude-b-2', 'claude-c-3']);
    expect((await sdk(emu).models.retrieve('claude-b-2')).display_name).toBe('Claude B 2');
    expect((await call(emu, '/v1/models/claude-z-9', { headers: authed })).status).toBe(404);
  });

  it('unknown paths get 404 not_found_error with a request-id', async () => {
    const emu = await emulator();
    const answer = await call(emu, '/v1/complete', { headers: authed, body: {} });
    expect(answer.status).toBe(404);
    expect(answer.body.error?.type).toBe('not_found_error');
    expect(answer.headers.get('request-id')).toMatch(/^req_/);
  });
});

describe('control API', () => {
  it('stats, log (with since/limit), reset', async () => {
    const emu = await emulator({ limits: { rpm: 2 } });
    const client = sdk(emu);
    await client.messages.create(params('one'));
    await client.messages.create(params('one'));
    await client.messages.create(params('two')).catch(() => {});
    const stats = (await call(emu, '/_emulator/stats')).body;
    expect(stats).toMatchObject({
      requests: 3,
      byStatus: { '200': 2, '429': 1 },
      byErrorType: { rate_limit_error: 1 },
      rateLimited: { requests: 1 },
      lastSeq: 3,
    });
    const log = (await call(emu, '/_emulator/log?since=1')).body as unknown as {
      entries: Array<Record<string, unknown>>;
      lastSeq: number;
    };
    expect(log.lastSeq).toBe(3);
    expect(log.entries.map((e) => [e.seq, e.status, e.attempt])).toEqual([
      [2, 200, 2],
      [3, 429, 1],
    ]);
    expect(log.entries[1]).toMatchObject({
      path: '/v1/messages',
      model: MODEL,
      errorType: 'rate_limit_error',
      rateLimit: 'requests',
      retryAfterSeconds: 30,
      promptHash: expect.stringMatching(/^[0-9a-f]{12}$/),
      requestId: expect.stringMatching(/^req_/),
    });
    expect(((await call(emu, '/_emulator/log?limit=1')).body.entries as unknown[]).length).toBe(1);

    expect((await call(emu, '/_emulator/reset', { body: {} })).status).toBe(200);
    expect(emu.control.stats()).toMatchObject({ requests: 0, lastSeq: 0 });
    expect(emu.control.log()).toEqual([]);
    // Buckets refilled and attempt counts forgotten.
    await client.messages.create(params('one'));
    expect(emu.control.log()[0]?.attempt).toBe(1);
  });

  it('faults, limits, latency, credits, revoke and spend cap over HTTP', async () => {
    const emu = await emulator({ credits: { balance: 0 } });
    const client = sdk(emu);
    const put = (path: string, body: unknown) => call(emu, path, { method: 'PUT', body });

    expect((await call(emu, '/_emulator/credits')).body).toEqual({ balance: 0 });
    expect((await call(emu, '/_emulator/credits/top-up', { body: { amount: 1 } })).body).toEqual({
      balance: 1,
    });
    await client.messages.create(params('paid'));

    expect((await put('/_emulator/faults', { script: ['overloaded_error'] })).status).toBe(200);
    expect((await call(emu, '/_emulator/faults')).body).toEqual({ script: ['overloaded_error'] });
    await call(emu, '/_emulator/credits/top-up', { body: { amount: 10 } });
    await expect(client.messages.create(params('x'))).rejects.toMatchObject({ status: 529 });

    expect((await put('/_emulator/limits', { rpm: 1 })).status).toBe(200);
    await client.messages.create(params('limited'));
    await expect(client.messages.create(params('limited 2'))).rejects.toMatchObject({ status: 429 });
    expect((await put('/_emulator/limits', null)).status).toBe(200);

    expect((await put('/_emulator/latency', { fixedMs: 0, jitterMs: 0 })).status).toBe(200);

    expect((await call(emu, '/_emulator/spend-cap', { body: { on: true } })).body).toEqual({
      spendCapReached: true,
    });
    await expect(client.messages.create(params('capped'))).rejects.toMatchObject({ status: 429 });
    await call(emu, '/_emulator/spend-cap', { body: { on: false } });

    expect((await call(emu, '/_emulator/revoke', { body: { key: KEY } })).status).toBe(200);
    await expect(client.messages.create(params('revoked'))).rejects.toMatchObject({ status: 401 });
    await call(emu, '/_emulator/restore', { body: { key: KEY } });
    await client.messages.create(params('restored'));
  });

  it('bad control input gets 400 naming the field and value; unknown endpoints 404', async () => {
    const emu = await emulator();
    const bad = await call(emu, '/_emulator/faults', {
      method: 'PUT',
      body: { probabilities: { api_error: 3 } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.type).toBe('invalid_request_error');
    expect(bad.body.error?.message).toContain('faults.probabilities.api_error');
    expect(bad.body.error?.message).toContain('3');
    const badLimits = await call(emu, '/_emulator/limits', { method: 'PUT', body: { rpm: 'many' } });
    expect(badLimits.body.error?.message).toContain('limits.rpm');
    const notJson = await call(emu, '/_emulator/revoke', { body: '{"key": sk-secret' });
    expect(notJson.status).toBe(400);
    expect(JSON.stringify(notJson.body)).not.toContain('sk-secret');
    // A misspelt field of a revoke body is named, but its value (a key) is not shown.
    const typo = await call(emu, '/_emulator/revoke', { body: { keys: 'sk-secret-typo' } });
    expect(typo.status).toBe(400);
    expect(typo.body.error?.message).toContain('body.keys');
    expect(JSON.stringify(typo.body)).not.toContain('sk-secret-typo');
    expect((await call(emu, '/_emulator/nothing')).status).toBe(404);
  });

  it('the request log and stats never contain an API key', async () => {
    const emu = await emulator({ apiKeys: [KEY], requestLogSize: 100 });
    await sdk(emu).messages.create(params('bearer'));
    await call(emu, '/v1/messages', { headers: authed, body: params('x-api-key') });
    await call(emu, `/v1/messages?key=${KEY}`, { headers: authed, body: params('in the query') });
    await call(emu, '/v1/messages', {
      headers: { ...authed, 'x-api-key': `${KEY}-wrong` },
      body: params('wrong'),
    });
    await sdk(emu).messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'count' }] });
    await call(emu, '/_emulator/revoke', { body: { key: KEY } });
    await call(emu, '/v1/messages', { headers: authed, body: params('revoked') });

    const texts = [
      JSON.stringify(emu.control.log()),
      JSON.stringify(emu.control.stats()),
      JSON.stringify((await call(emu, '/_emulator/log')).body),
      JSON.stringify((await call(emu, '/_emulator/stats')).body),
    ];
    expect(emu.control.log()).toHaveLength(6);
    for (const text of texts) expect(text).not.toContain(KEY);
  });

  it('the log is a bounded ring', async () => {
    const emu = await emulator({ requestLogSize: 5 });
    const client = sdk(emu);
    for (let i = 0; i < 8; i++) await client.messages.create(params(`ring ${i}`));
    expect(emu.control.log().map((e) => e.seq)).toEqual([4, 5, 6, 7, 8]);
    expect(emu.control.log({ sinceSeq: 6 }).map((e) => e.seq)).toEqual([7, 8]);
    expect(emu.control.stats().requests).toBe(8);
  });
});
