import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { freePort } from '../../../src/devtools/private-redis.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { budgetKeyPattern } from '../../../src/limits/index.js';

export { freePort };

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** An account id no other test uses (budget keys are per account). */
export function uniqueAccount(tag: string): string {
  return `t${tag}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** A connection like the worker's: commands wait out an outage. */
export function connect(url: string = REDIS_URL, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(50 * attempt, 500),
    ...extra,
  });
}

/** Redis's clock, in ms. */
export async function redisTime(client: Redis): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Number(us) / 1000;
}

/** Deletes every budget key of the account. */
export async function deleteBudgetKeys(client: Redis, accountId: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', budgetKeyPattern(accountId), 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A private redis-server in a temp dir, on a free port, that a test may kill and start again. */
export class TestRedisServer {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  static async start(options: { appendonly: boolean }): Promise<TestRedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'cb-limits-redis-'));
    const port = await freePort();
    const args = options.appendonly
      ? ['--appendonly', 'yes', '--appendfsync', 'everysec']
      : ['--appendonly', 'no'];
    const server = new TestRedisServer(port, dir, [
      ...args,
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ]);
    await server.startProcess();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async startProcess(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, ...this.args],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    this.child = child;
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    try {
      for (let i = 0; i < 100; i++) {
        try {
          await probe.connect();
          const pong = await probe.ping();
          if (pong === 'PONG') return;
        } catch {
          probe.disconnect();
          await sleep(50);
        }
      }
      throw new Error(`redis-server did not start on port ${this.port}`);
    } finally {
      probe.disconnect();
    }
  }

  /** Kills the server by its pid (SIGKILL: no shutdown save) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGKILL');
    await exited;
    this.child = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
