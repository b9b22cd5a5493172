import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cliEnv, spawnCli } from '../../helpers/cli.js';
import { deletePrefix, uniquePrefix } from '../../helpers/runtime.js';

const TOKEN = 'cli-token-0e9d8c7b';

let dir: string;
const prefixes: string[] = [];

function dashboardCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const prefix = uniquePrefix('dash-cli');
  prefixes.push(prefix);
  return spawnCli(['dashboard', ...args], cliEnv({ CLAUDE_BATCH_PREFIX: prefix, ...env }));
}

function collect(child: ChildProcess): {
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
} {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  return { stdout: () => stdout, stderr: () => stderr, exit };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-dashboard-cli-'));
});

afterAll(async () => {
  for (const p of prefixes) await deletePrefix(p);
  await rm(dir, { recursive: true, force: true });
});

describe('claude-batch dashboard', () => {
  it('documents every option and the auth variables in --help', async () => {
    const run = collect(dashboardCli(['--help']));
    expect(await run.exit).toBe(0);
    for (const text of [
      '--port',
      '--host',
      '--read-only',
      '--prices',
      '--refresh',
      'CLAUDE_BATCH_DASHBOARD_TOKEN',
      'CLAUDE_BATCH_DASHBOARD_USER',
      'CLAUDE_BATCH_DASHBOARD_PASSWORD',
      '/metrics',
    ]) {
      expect(run.stdout()).toContain(text);
    }
  });

  it('refuses to listen beyond loopback without credentials (exit 2), or with a bad prices file', async () => {
    const bad = join(dir, 'prices.json');
    await writeFile(bad, JSON.stringify([{ match: 'claude-*', input: 'cheap', output: 1 }]));
    const open = collect(dashboardCli(['--host', '0.0.0.0', '--port', '0']));
    const prices = collect(dashboardCli(['--port', '0', '--prices', bad]));
    expect(await open.exit).toBe(2);
    expect(open.stderr()).toMatch(/refusing to listen on 0\.0\.0\.0.*CLAUDE_BATCH_DASHBOARD_TOKEN/);
    expect(await prices.exit).toBe(2);
    expect(prices.stderr()).toContain(
      'entry 0, field "input": expected a number >= 0 (USD per million tokens), got "cheap"',
    );
  });

  it('prints the URL, serves with the token, and stops cleanly on SIGTERM', async () => {
    const child = dashboardCli(['--host', '0.0.0.0', '--port', '0', '--read-only'], {
      CLAUDE_BATCH_DASHBOARD_TOKEN: TOKEN,
    });
    const run = collect(child);
    // The URL line, or an early exit (whose stderr the next assertion shows).
    await vi.waitFor(
      () => expect(run.stdout().includes('\n') || child.exitCode !== null, run.stderr()).toBe(true),
      // A loaded machine can take a while to start a Node CLI.
      { timeout: 45_000, interval: 50 },
    );
    const url = run.stdout().trim();
    expect(url, run.stderr()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(run.stderr()).toContain('read-only');
    expect((await fetch(`${url}api/batches`)).status).toBe(401);
    const ok = await fetch(`${url}api/batches`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual([]);
    child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).not.toContain(TOKEN);
  });
});
