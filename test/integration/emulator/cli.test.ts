import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMMAND = join(ROOT, 'src/cli/emulator-command.ts');

/** Runs `claude-batch emulator ...` with only this command registered, as main.ts would. */
function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  const script = `
    import { Command } from 'commander';
    import { registerEmulatorCommand } from ${JSON.stringify(COMMAND)};
    const program = new Command('claude-batch');
    registerEmulatorCommand(program);
    await program.parseAsync(process.argv.slice(1), { from: 'user' });
  `;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, 'emulator', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

async function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

describe('claude-batch emulator (CLI)', () => {
  it.each([
    [
      ['--rpm', 'abc'],
      ['--rpm', 'abc'],
    ],
    [
      ['--port', '70000'],
      ['--port', '70000'],
    ],
    [
      ['--billing-status', '401'],
      ['--billing-status', '401'],
    ],
    [
      ['--fault', 'api_error=2'],
      ['--fault', 'api_error=2'],
    ],
    [
      ['--fault', 'gremlins=0.1'],
      ['--fault', 'gremlins'],
    ],
    [
      ['--otpm-mode', 'reserve'],
      ['--otpm-mode', '--otpm'],
    ],
    [
      ['--credit-per-request', '2'],
      ['--credit-per-request', '--credits'],
    ],
    [
      ['--faults', '/nonexistent/plan.json'],
      ['--faults', '/nonexistent/plan.json'],
    ],
    [['--frobnicate'], ['--frobnicate']],
    [
      ['--max-concurrent', '0'],
      ['--max-concurrent', '0', 'an integer >= 1'],
    ],
  ])('rejects %j with exit code 2 and names the option and value', async (args, mentions) => {
    const { code, stderr, stdout } = await finish(start(args));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    for (const text of mentions) expect(stderr).toContain(text);
  });

  it('rejects a faults file with a bad value, naming the file, the option and the value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emulator-cli-'));
    const file = join(dir, 'plan.json');
    writeFileSync(file, JSON.stringify({ probabilities: { overloaded_error: 1.5 } }));
    const { code, stderr } = await finish(start(['--faults', file]));
    expect(code).toBe(2);
    expect(stderr).toContain(file);
    expect(stderr).toContain('faults.probabilities.overloaded_error');
    expect(stderr).toContain('1.5');
  });

  it('--help documents every option and the key variable', async () => {
    const { code, stdout } = await finish(start(['--help']));
    expect(code).toBe(0);
    for (const flag of [
      '--port',
      '--host',
      '--rpm',
      '--itpm',
      '--otpm',
      '--otpm-mode',
      '--models',
      '--latency-ms',
      '--faults',
      '--fault ',
      '--seed',
      '--credits',
      '--billing-status',
      '--max-body-bytes',
      '--max-concurrent',
      '--min-cache-tokens',
      '--batches-start-delay',
      '--batches-processing',
      '--batches-max-requests',
      '--batches-max-bytes',
      '--batches-queue-limit',
      '--batches-expiry',
      '--batches-create-reply-delay',
      '--batches-results-pause-after',
      '--batches-results-pause',
      'CLAUDE_EMULATOR_KEYS',
      'text/event-stream',
      'ramp_limit_exceeded',
      'html_502',
      'reset_mid_response',
      '@@stream_fault:',
      'anthropic-ratelimit-',
    ]) {
      expect(stdout).toContain(flag);
    }
  });

  it('prints its URL, serves keys from CLAUDE_EMULATOR_KEYS, and exits 0 on SIGTERM', async () => {
    const child = start(['--rpm', '100', '--seed', '3'], { CLAUDE_EMULATOR_KEYS: 'sk-cli-one, sk-cli-two' });
    const done = finish(child);
    const url = await new Promise<string>((resolve) => {
      let buffered = '';
      child.stdout?.on('data', (d: Buffer) => {
        buffered += d.toString();
        const line = buffered.split('\n')[0];
        if (buffered.includes('\n') && line !== undefined) resolve(line);
      });
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const ask = (key: string) =>
      fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 10,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
    const ok = await ask('sk-cli-two');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('anthropic-ratelimit-requests-limit')).toBe('100');
    expect((await ask('sk-cli-three')).status).toBe(401);

    child.kill('SIGTERM');
    const { code, stdout, stderr } = await done;
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(url);
    expect(stderr).not.toContain('sk-cli-one');
  });
});
