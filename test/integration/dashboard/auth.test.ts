import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DashboardConfigError,
  authFromEnv,
  isLoopbackHost,
  startDashboard,
  type RunningDashboard,
} from '../../../src/dashboard/index.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { seedBatch } from './fixtures.js';

const TOKEN = 'dash-token-5d1f0c7a9e3b';
let runtime: Runtime;
const open: RunningDashboard[] = [];

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The routes a scraper, a script and a browser use: ours and Bull Board's. */
const ROUTES = ['', 'api/batches', 'api/breakers', 'metrics', 'queues', 'queues/api/queues'];

beforeAll(async () => {
  runtime = await testRuntime('dash-auth');
  await seedBatch(runtime);
});

afterAll(async () => {
  for (const d of open) await d.close();
  if (runtime) await disposeRuntime(runtime);
});

async function start(options: Parameters<typeof startDashboard>[1]): Promise<{ base: string }> {
  const running = await startDashboard(runtime, options);
  open.push(running);
  // Bound to every interface, reached over loopback only: no traffic leaves the machine.
  return { base: `http://127.0.0.1:${running.address.port}/` };
}

describe('dashboard authentication', () => {
  it('beyond loopback with a token: refuses requests without it, accepts them with it', async () => {
    const { base } = await start({ host: '0.0.0.0', port: 0, auth: { token: new Secret(TOKEN) } });
    for (const route of ROUTES) {
      const anonymous = await fetch(`${base}${route}`);
      expect(anonymous.status, route).toBe(401);
      expect(anonymous.headers.get('www-authenticate'), route).toMatch(/^Basic realm=/);
      expect(await anonymous.text(), route).not.toContain('batch_dashboard_demo');

      const wrong = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status, route).toBe(401);
      const bearer = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(bearer.status, route).toBe(200);
      // Browsers: basic auth with the token as password, any user name.
      const browser = await fetch(`${base}${route}`, { headers: { authorization: basic('me', TOKEN) } });
      expect(browser.status, route).toBe(200);
    }
    const body = await (
      await fetch(`${base}api/batches`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json();
    expect(body).toEqual([expect.objectContaining({ id: 'batch_dashboard_demo', total: 10 })]);
    // A token in the query string is not accepted (it would end up in logs and history).
    expect((await fetch(`${base}api/batches?token=${TOKEN}`)).status).toBe(401);
    // Nor are POSTs without it.
    expect((await fetch(`${base}api/pause`, { method: 'POST' })).status).toBe(401);
    expect(await runtime.requests.isPaused()).toBe(false);
  });

  it('beyond loopback with basic credentials: requires the right user and password', async () => {
    const { base } = await start({
      host: '0.0.0.0',
      port: 0,
      auth: { basic: { user: 'ops', password: new Secret('correct horse') } },
    });
    expect((await fetch(base)).status).toBe(401);
    expect((await fetch(base, { headers: { authorization: basic('ops', 'wrong') } })).status).toBe(401);
    expect((await fetch(base, { headers: { authorization: basic('other', 'correct horse') } })).status).toBe(
      401,
    );
    expect((await fetch(base, { headers: { authorization: 'Bearer correct horse' } })).status).toBe(401);
    const ok = await fetch(base, { headers: { authorization: basic('ops', 'correct horse') } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('batch_dashboard_demo');
  });

  it('refuses to start beyond loopback without credentials, naming the variables to set', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const attempt = startDashboard(runtime, { host, port: 0 });
      await expect(attempt).rejects.toThrow(DashboardConfigError);
      await expect(attempt).rejects.toThrow(
        /CLAUDE_BATCH_DASHBOARD_TOKEN.*CLAUDE_BATCH_DASHBOARD_USER.*CLAUDE_BATCH_DASHBOARD_PASSWORD/,
      );
    }
    expect(() => authFromEnv({ CLAUDE_BATCH_DASHBOARD_USER: 'ops' })).toThrow(
      /CLAUDE_BATCH_DASHBOARD_PASSWORD/,
    );
    const auth = authFromEnv({ CLAUDE_BATCH_DASHBOARD_TOKEN: TOKEN });
    expect(auth.token?.reveal()).toBe(TOKEN);
    expect(JSON.stringify(auth)).not.toContain(TOKEN);
  });

  it('on loopback without credentials: serves, but only to loopback Host names', async () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', 'example.com', '10.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(false);
    const running = await startDashboard(runtime, { port: 0 });
    open.push(running);
    expect(running.url).toBe(`http://127.0.0.1:${running.address.port}/`);
    expect((await fetch(running.url)).status).toBe(200);
    // A foreign name pointed at 127.0.0.1 (DNS rebinding) is not served.
    // (fetch may not set Host, so node:http sends this one.)
    const status = (hostHeader: string) =>
      new Promise<number | undefined>((resolve, reject) => {
        const req = request(running.url, { headers: { host: hostHeader } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status(`attacker.example:${running.address.port}`)).toBe(403);
    expect(await status(`localhost:${running.address.port}`)).toBe(200);
  });
});
