/**
 * The workers of one model-check run: in-process ClaudeWorkers (npm test), or `claude-batch worker`
 * processes that can be SIGKILLed (the soak). Both are started and stopped through this interface.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  openRuntime,
  startWorker,
  type ClaudeBatchConfig,
  type ClaudeWorker,
  type Logger,
} from './system.js';

export interface WorkerPool {
  readonly running: number;
  start(): Promise<void>;
  /** Graceful stop (close / SIGTERM) of the oldest worker. */
  stop(): Promise<void>;
  /** SIGKILL of the oldest worker; undefined when the pool cannot kill (in-process workers). */
  kill?: () => Promise<void>;
  closeAll(): Promise<void>;
}

/** In-process workers, each with its own runtime (connection), as separate processes would have. */
export class InProcessPool implements WorkerPool {
  private readonly workers: Array<{ worker: ClaudeWorker; close: () => Promise<void> }> = [];

  constructor(
    private readonly config: ClaudeBatchConfig,
    private readonly logger: Logger,
  ) {}

  get running(): number {
    return this.workers.length;
  }

  async start(): Promise<void> {
    const runtime = await openRuntime(this.config, { logger: this.logger });
    const worker = await startWorker(runtime);
    this.workers.push({
      worker,
      close: async () => {
        await worker.close();
        await runtime.close();
      },
    });
  }

  async stop(): Promise<void> {
    await this.workers.shift()?.close();
  }

  async closeAll(): Promise<void> {
    while (this.workers.length > 0) await this.stop();
  }
}

const BIN = fileURLToPath(new URL('../../bin/claude-batch.js', import.meta.url));

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  output: string[];
}

/** `claude-batch worker` processes with the given environment. */
export class ProcessPool implements WorkerPool {
  private readonly workers: WorkerProcess[] = [];
  /** Times (ms) of SIGKILLs: a request in flight then may be sent twice. */
  readonly kills: number[] = [];

  constructor(private readonly env: () => NodeJS.ProcessEnv) {}

  get running(): number {
    return this.workers.length;
  }

  /** The environment worker processes get. */
  environment(): NodeJS.ProcessEnv {
    return this.env();
  }

  /** Requests the emulator logged after `seq` (a cheap "something is in flight or done" probe). */
  inFlightSince(w: { emulator: { control: { stats(): { lastSeq: number } } } }, seq: number): number {
    return w.emulator.control.stats().lastSeq - seq;
  }

  /** SIGKILL of the most recently started worker. */
  async killNewest(): Promise<void> {
    const w = this.workers.pop();
    if (!w) return;
    this.kills.push(Date.now());
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exited;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: this.env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const output: string[] = [];
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      if (text.includes('worker started')) onReady();
      output.push(text);
      if (output.length > 200) output.shift();
    });
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.workers.push({ child, exited, output });
    // Started means taking jobs: a run's operations must not all pass while workers still boot.
    // eslint-disable-next-line no-restricted-syntax -- the deadline of the wait for `ready`, not a wait.
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
    await Promise.race([ready, exited, timeout]);
  }

  async stop(): Promise<void> {
    const w = this.workers.shift();
    if (!w) return;
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
    await w.exited;
  }

  kill = async (): Promise<void> => {
    const w = this.workers.shift();
    if (!w) return;
    this.kills.push(Date.now());
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exited;
  };

  async closeAll(): Promise<void> {
    while (this.workers.length > 0) await this.kill();
  }
}
