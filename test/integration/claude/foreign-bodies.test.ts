/**
 * Answers that are not the API's (anthropic-api.md, "What the live API has been seen to send"):
 * proxies and the edge send 502/503/504 with an HTML page or an empty body, a 413 without JSON,
 * a 529 or 500 without retry-after, and connections break mid-response. Through the real SDK over
 * real HTTP to a stand-in proxy: classified by status, retried or dead-lettered per the table, and
 * the operator reads a short summary, never a page of HTML.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClaudeClient, type CallResult } from '../../../src/claude/claude-client.js';
import { classify } from '../../../src/errors/classify.js';
import { Secret } from '../../../src/secret.js';

const HTML_502 = `<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title><style>${'body{margin:0}'.repeat(200)}</style></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>${'<p>padding</p>'.repeat(500)}</body></html>`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const SHAPES: Record<string, Handler> = {
  '/html-502': (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end(HTML_502),
  '/empty-503': (_req, res) => res.writeHead(503).end(),
  '/html-504': (_req, res) =>
    res
      .writeHead(504, { 'content-type': 'text/html' })
      .end('<html><body><h1>504 Gateway Time-out</h1></body></html>'),
  '/bare-413': (_req, res) =>
    res.writeHead(413, { 'content-type': 'text/plain' }).end('Request Entity Too Large'),
  '/json-529': (_req, res) =>
    res
      .writeHead(529, { 'content-type': 'application/json' })
      .end('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
  '/bare-500': (_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{}'),
  '/reset-mid-response': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"id":"msg_1","type":"mess');
    setImmediate(() => res.socket?.destroy());
  },
};

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => SHAPES[req.url!.replace(/\/v1\/messages.*$/, '')]!(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

async function call(baseURL: string): Promise<Extract<CallResult, { ok: false }>['failure']> {
  const client = createClaudeClient({
    apiKey: new Secret('sk-test-foreign-0001'),
    baseURL,
    timeoutMs: 5_000,
  });
  const result = await client.call({
    model: 'claude-haiku-4-5',
    max_tokens: 8,
    messages: [{ role: 'user', content: 'hi' }],
  });
  if (result.ok) throw new Error('expected a failure');
  return result.failure;
}

const ctx = { retriesSoFar: 0, backoff: { baseDelayMs: 100, maxDelayMs: 1_000 }, random: () => 0.5 };

describe('bodies that are not the API’s', () => {
  it.each<[string, number | null, 'retry' | 'dead-letter', string, RegExp]>([
    [
      '/html-502',
      502,
      'retry',
      'api_error',
      /^HTTP 502 with an HTML page \(from a proxy or the edge, not the API\): 502 Bad Gateway$/,
    ],
    ['/empty-503', 503, 'retry', 'api_error', /^HTTP 503 with an empty body/],
    ['/html-504', 504, 'retry', 'timeout_error', /^HTTP 504 with an HTML page .*: 504 Gateway Time-out$/],
    ['/bare-413', 413, 'dead-letter', 'request_too_large', /^413 Request Entity Too Large$/],
    ['/json-529', 529, 'retry', 'overloaded_error', /^Overloaded$/],
    ['/bare-500', 500, 'retry', 'api_error', /^500 \{\}$/],
    ['/reset-mid-response', null, 'retry', 'connection_error', /^Connection error/],
  ])('%s → %s, %s as %s, with a short readable message', async (path, status, action, type, message) => {
    const failure = await call(`${base}${path}`);
    expect(failure.status).toBe(status);
    expect(failure.message).toMatch(message);
    expect(failure.message.length).toBeLessThanOrEqual(300);
    expect(failure.message).not.toMatch(/<[a-z!]/i);
    const verdict = classify(failure, ctx);
    expect(verdict).toMatchObject({ action, type });
    // No retry-after on any of these: our backoff alone sets the delay.
    if (verdict.action === 'retry') expect(verdict.hintMs).toBeNull();
    // A response (or part of one) came back: the request may have been processed.
    expect(failure.neverSent ?? false).toBe(false);
  });

  it('a refused connection and an unresolvable host mean never sent, and are retried', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await call(`http://127.0.0.1:${port}`);
    expect(refused).toMatchObject({ status: null, transport: 'connection', neverSent: true });
    expect(refused.message).toBe('Connection error (ECONNREFUSED).');
    expect(classify(refused, ctx).action).toBe('retry');

    // .invalid never resolves (RFC 6761).
    const dns = await call('http://claude-batch-test.invalid');
    expect(dns).toMatchObject({ status: null, transport: 'connection', neverSent: true });
    expect(dns.message).toMatch(/^Connection error \((ENOTFOUND|EAI_AGAIN)\)\.$/);
  });
});
