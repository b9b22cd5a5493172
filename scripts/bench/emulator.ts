/**
 * Emulator throughput: N keep-alive connections send small `POST /v1/messages` requests for a fixed
 * time, then the requests/s is printed. The emulator runs in a child process (no latency, faults or
 * limits; request log on), so client and server each get a core; or pass --url to measure a running one.
 *
 *   npx tsx scripts/bench/emulator.ts [--connections 64] [--duration 5] [--warmup 1] [--url URL]
 *
 * Prints one line of JSON: {"requestsPerSecond":..., "requests":..., "errors":..., ...,
 * "serverRequestsPerCpuSecond":...}; the last is the server's throughput per core of CPU it used, a
 * figure that other processes competing for the cores disturb less than requests/s.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { startEmulator } from '../../src/emulator/index.js';

const SERVE_FLAG = '--serve-emulator';
const API_KEY = 'bench-key';
const MODEL = 'claude-haiku-4-5';
/** Distinct prompts, so hashing, attempt counting and the log see varied content, at no client cost. */
const PROMPT_VARIANTS = 256;

if (process.argv.includes(SERVE_FLAG)) {
  const handle = await startEmulator({ apiKeys: [API_KEY] });
  const cpuAtStart = process.cpuUsage();
  process.send?.({ url: handle.url });
  process.on('message', (message) => {
    if (message === 'stop') {
      const stats = handle.control.stats();
      void handle.close().then(() => {
        const cpu = process.cpuUsage(cpuAtStart);
        process.send?.({
          stats: {
            requests: stats.requests,
            byStatus: stats.byStatus,
            logEntries: handle.control.log().length,
            cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
          },
        });
        process.disconnect();
      });
    }
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '64' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      url: { type: 'string' },
    },
  });
  const connections = positive('--connections', values.connections);
  const durationS = positive('--duration', values.duration);
  const warmupS = Number(values.warmup);

  const child = values.url === undefined ? fork(new URL(import.meta.url).pathname, [SERVE_FLAG]) : null;
  const url = values.url ?? (await new Promise<string>((resolve) => child?.once('message', (m: { url: string }) => resolve(m.url))));
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const bodies = Array.from({ length: PROMPT_VARIANTS }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        model: MODEL,
        max_tokens: 64,
        messages: [{ role: 'user', content: `Benchmark prompt number ${i}: say something short.` }],
      }),
    ),
  );

  const clientCpuAtStart = process.cpuUsage();
  let counting = false;
  let stopped = false;
  let done = 0;
  let errors = 0;
  let sent = 0;
  const statuses: Record<number, number> = {};

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const body = bodies[sent++ % PROMPT_VARIANTS] as Buffer;
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: '/v1/messages',
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            'x-api-key': API_KEY,
            'anthropic-version': '2023-06-01',
          },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => {
            if (counting) {
              done++;
              statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
              if (res.statusCode !== 200) errors++;
            }
            resolve();
          });
        },
      );
      req.on('error', () => {
        if (counting) errors++;
        resolve();
      });
      req.end(body);
    });

  const loop = async (): Promise<void> => {
    while (!stopped) await one();
  };
  const loops = Array.from({ length: connections }, loop);
  await sleep(warmupS * 1000);
  counting = true;
  const started = performance.now();
  await sleep(durationS * 1000);
  counting = false;
  const elapsedS = (performance.now() - started) / 1000;
  stopped = true;
  await Promise.all(loops);
  agent.destroy();
  const clientCpu = process.cpuUsage(clientCpuAtStart);
  const clientCpuSeconds = Math.round((clientCpu.user + clientCpu.system) / 1e4) / 100;

  let serverStats: { requests: number; cpuSeconds: number } | null = null;
  if (child !== null) {
    serverStats = await new Promise((resolve) => {
      child.on('message', (m: { stats?: { requests: number; cpuSeconds: number } }) => {
        if (m.stats !== undefined) resolve(m.stats);
      });
      child.send('stop');
    });
  }
  const requestsPerSecond = Math.round(done / elapsedS);
  console.log(
    JSON.stringify({
      requestsPerSecond,
      requests: done,
      errors,
      statuses,
      connections,
      durationS: Math.round(elapsedS * 100) / 100,
      clientCpuSeconds,
      serverStats,
      // Less sensitive to other load on the machine than requests/s: what one core of server CPU sustains.
      serverRequestsPerCpuSecond:
        serverStats === null ? null : Math.round(serverStats.requests / Math.max(serverStats.cpuSeconds, 0.01)),
    }),
  );
}

function positive(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${flag} expects a positive number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
