import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, startPrivateRedis, type PrivateRedis } from './private-redis.js';

const run = promisify(execFile);

export interface PrivateClusterOptions {
  /** Primaries (no replicas). Default 3, the least `redis-cli --cluster create` accepts. */
  masters?: number;
  /** Extra `redis-server` arguments for every node (`--requirepass PW` is also used to set it up). */
  args?: string[];
  /** How long the cluster may take to report `cluster_state:ok`. Default 20,000 ms. */
  timeoutMs?: number;
}

/** A Redis Cluster of private `redis-server`s on loopback, in one temp dir, that this process started. */
export interface PrivateCluster {
  /** `127.0.0.1:PORT` of every primary: the value of REDIS_CLUSTER_NODES, joined with commas. */
  readonly nodes: readonly string[];
  readonly ports: readonly number[];
  readonly pids: readonly number[];
  readonly dir: string;
  /** Stops every node by its pid and removes the directory. */
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` primaries on free loopback ports (each with its cluster bus
 * on a free port of its own, set by `--cluster-port`, so a client port above 55535 works), assigns
 * the slots with `redis-cli --cluster create`, and resolves once every node reports
 * `cluster_state:ok` and knows every other. For tests and benchmarks of cluster mode.
 */
export async function startPrivateCluster(options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const masters = options.masters ?? 3;
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 primaries');
  const dir = await mkdtemp(join(tmpdir(), 'claude-batch-cluster-'));
  const servers: PrivateRedis[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const used = new Set<number>();
    const pick = async (): Promise<number> => {
      for (;;) {
        const port = await freePort();
        if (!used.has(port)) {
          used.add(port);
          return port;
        }
      }
    };
    for (let i = 0; i < masters; i++) {
      const port = await pick();
      const busPort = await pick();
      const nodeDir = join(dir, String(port));
      await mkdir(nodeDir);
      servers.push(
        await startPrivateRedis({
          port,
          dir: nodeDir,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(nodeDir, 'nodes.conf'),
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '5000',
            ...(options.args ?? []),
          ],
        }),
      );
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    const password = passwordOf(options.args);
    const auth = password ? ['--no-auth-warning', '-a', password] : [];
    try {
      await run(
        'redis-cli',
        [...auth, '--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 30_000 },
      );
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.stderr || e.stdout || e.message}`, {
        cause: err,
      });
    }
    await waitForClusterOk(
      servers.map((s) => s.port),
      password,
      options.timeoutMs ?? 20_000,
    );
    return {
      nodes,
      ports: servers.map((s) => s.port),
      pids: servers.map((s) => s.pid),
      dir,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits until every node says `cluster_state:ok`, knows every node and agrees that all slots are served. */
async function waitForClusterOk(
  ports: readonly number[],
  password: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients = ports.map((port) => {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      ...(password === undefined ? {} : { password }),
      maxRetriesPerRequest: 1,
      lazyConnect: true,
    });
    client.on('error', () => {});
    return client;
  });
  try {
    let last = '';
    for (;;) {
      try {
        const infos = await Promise.all(clients.map((c) => c.cluster('INFO')));
        last = infos.map((info) => /cluster_state:\w+/.exec(info)?.[0] ?? '?').join(', ');
        const ready = infos.every(
          (info) =>
            /cluster_state:ok/.test(info) &&
            /cluster_slots_ok:16384/.test(info) &&
            new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(info),
        );
        if (ready) return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`the cluster did not become ready: ${last}`);
      await sleep(100);
    }
  } finally {
    for (const client of clients) client.disconnect();
  }
}

function passwordOf(args: readonly string[] | undefined): string | undefined {
  const at = args?.indexOf('--requirepass') ?? -1;
  return at >= 0 ? args?.[at + 1] : undefined;
}
