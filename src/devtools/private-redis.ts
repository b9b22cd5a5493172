import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface PrivateRedisOptions {
  /** Default: a free port. Give the old port to restart a server on the same data. */
  port?: number;
  /** Default: a new temp dir (removed by `stop({ removeDir: true })`). */
  dir?: string;
  /** Turn on AOF (`appendonly yes`, `appendfsync everysec`). Default false. */
  appendonly?: boolean;
  /** Extra `redis-server` arguments, e.g. `['--requirepass', 'pw']`. */
  args?: string[];
}

/** A `redis-server` this process started, on loopback, in its own directory. */
export interface PrivateRedis {
  readonly port: number;
  readonly dir: string;
  readonly url: string;
  readonly pid: number;
  /**
   * CPU time (user + system, ms, every thread) the server has used, from /proc/<pid>/stat (Linux):
   * read before and after an operation, it tells what the operation cost Redis, exactly, since
   * nothing else talks to this server.
   */
  cpuMs(): Promise<number>;
  /** Stops it by pid: SIGTERM (clean), or SIGKILL to simulate a crash. */
  stop(options?: { signal?: 'SIGTERM' | 'SIGKILL'; removeDir?: boolean }): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Starts a private `redis-server` (for tests that need AOF, restarts or a password, and for the
 * demo when no Redis answers). Resolves once it answers PING.
 */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'claude-batch-redis-')));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendonly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    ...(options.args ?? []),
  ];
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(
        new Error(
          `cannot start redis-server (${(err as NodeJS.ErrnoException).code ?? err.message}): is it installed?`,
        ),
      ),
    ),
  );
  const password = passwordOf(options.args);
  const url = `redis://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${port}`;
  await Promise.race([waitForPing(url), spawnError]);
  return {
    port,
    dir,
    url,
    pid: child.pid ?? -1,
    cpuMs: () => processCpuMs(child.pid ?? -1),
    async stop(stopOptions = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(stopOptions.signal ?? 'SIGTERM');
        await exited;
      }
      if (stopOptions.removeDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether anything answers PING at `url` within `timeoutMs` (a reply that is an error, such as
 * NOAUTH, counts as an answer: a server is there, only the URL is wrong). Never retries.
 */
export async function redisAnswers(url: string, timeoutMs = 2_000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch {
    return false;
  }
  try {
    await client.ping();
    return true;
  } catch (err) {
    return !/connection|ECONNRE|ETIMEDOUT|closed/i.test((err as Error).message);
  } finally {
    client.disconnect();
  }
}

async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer at ${url}: ${(err as Error).message}`, { cause: err });
    } finally {
      client.disconnect();
    }
    await sleep(50);
  }
}

/** Clock ticks per second of /proc's CPU fields: USER_HZ, 100 on every Linux build that matters. */
const USER_HZ = 100;

/** utime + stime of a process (ms), from /proc/<pid>/stat. */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

function passwordOf(args: readonly string[] | undefined): string | undefined {
  const at = args?.indexOf('--requirepass') ?? -1;
  return at >= 0 ? args?.[at + 1] : undefined;
}
