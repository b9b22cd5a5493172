import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/claude-batch.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for a CLI child: the test's Redis and prefix, nothing inherited that could leak in. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Spawns `claude-batch ARGS` and returns the child (for tests that kill it). */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv, input?: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  if (input !== undefined) child.stdin?.end(input);
  else child.stdin?.end();
  return child;
}

/** Runs `claude-batch ARGS` to completion. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  const child = spawnCli(args, env, input);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
