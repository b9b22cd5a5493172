import { createReadStream, createWriteStream, rmSync, statSync, type Stats } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputChangedError, STDIN_NAME } from './input-error.js';
import type { ByteSource } from './line-reader.js';

/**
 * An input that can be read from the start more than once: pass 1 validates and fingerprints it,
 * pass 2 reads the requests to submit.
 */
export interface InputSource {
  /** For messages: the path as the user gave it, or `<stdin>`. */
  readonly name: string;
  /** Size in bytes when known (files and spooled stdin), for progress while scanning. */
  readonly size: number | undefined;
  /**
   * A fresh stream over the whole input. Throws {@link InputChangedError} if a file's size or
   * modification time changed since {@link openInput}.
   */
  open(): ByteSource;
  /** Releases the input: removes the stdin spool. Safe to call more than once. */
  close(): Promise<void>;
}

export interface OpenInputOptions {
  /**
   * What `-` reads.
   * @default process.stdin
   */
  stdin?: Readable;
  /**
   * Where stdin (or a pipe given by path) is spooled, in a fresh private directory.
   * @default os.tmpdir()
   */
  tmpDir?: string;
  /**
   * Read chunk size for files, in bytes. Each chunk's lines are validated together, so they all
   * live until the last is done: at 1 MiB (~3,000 lines) they outlived V8's young-generation
   * collections and were promoted, and pass 1's peak RSS was 60 MB higher than at 64 KiB, which
   * also reads a million lines faster (scripts/bench, section submit).
   * @default 64 KiB
   */
  highWaterMark?: number;
}

const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

/**
 * Opens the input named on the command line: a file path, or `-` for stdin.
 *
 * stdin and other one-shot inputs (a FIFO, `<(cmd)`) are copied to a temporary file first, since
 * the second pass has to read them again. The copy is private (mode 0600), removed by `close()`, and
 * removed at process exit if `close()` was never reached.
 */
export async function openInput(path: string, options: OpenInputOptions = {}): Promise<InputSource> {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  if (path === '-') {
    return spool(STDIN_NAME, options.stdin ?? process.stdin, options.tmpDir, highWaterMark);
  }

  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (err) {
    throw new Error(`cannot read input ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  }
  if (stats.isDirectory()) throw new Error(`cannot read input ${path}: it is a directory`);
  if (!stats.isFile()) {
    return spool(path, createReadStream(path, { highWaterMark }), options.tmpDir, highWaterMark);
  }

  const { size, mtimeMs } = stats;
  return {
    name: path,
    size,
    open(): ByteSource {
      const now = statSync(path, { throwIfNoEntry: false });
      if (now === undefined) throw new InputChangedError(path, 'it was removed');
      if (now.size !== size || now.mtimeMs !== mtimeMs) {
        throw new InputChangedError(path, `size ${size} → ${now.size} bytes, or modified`);
      }
      return createReadStream(path, { highWaterMark });
    },
    async close(): Promise<void> {},
  };
}

/** A source over anything re-openable (in-memory data, tests, a custom store). */
export function inputSource(
  name: string,
  open: () => ByteSource,
  options: { size?: number; close?: () => Promise<void> } = {},
): InputSource {
  return { name, size: options.size, open, close: options.close ?? (async () => {}) };
}

// Spool directories not yet removed; cleared synchronously at exit so prompts never linger in /tmp.
const liveSpools = new Set<string>();
let exitHookInstalled = false;

function removeLiveSpools(): void {
  for (const dir of liveSpools) rmSync(dir, { recursive: true, force: true });
  liveSpools.clear();
}

async function spool(
  name: string,
  from: Readable,
  tmpDir: string | undefined,
  highWaterMark: number,
): Promise<InputSource> {
  // The stream is not piped until the directory exists; an error in between must not go unhandled.
  let early: Error | undefined;
  const onEarlyError = (err: Error): void => {
    early ??= err;
  };
  from.on('error', onEarlyError);
  let dir: string;
  try {
    dir = await mkdtemp(join(tmpDir ?? tmpdir(), 'claude-batch-input-'));
  } finally {
    from.off('error', onEarlyError);
  }
  liveSpools.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', removeLiveSpools);
  }
  const file = join(dir, 'input.jsonl');
  const close = async (): Promise<void> => {
    liveSpools.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    if (early !== undefined) throw early;
    await pipeline(from, createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    await close();
    throw new Error(`cannot read input ${name}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const { size } = await stat(file);
  return {
    name,
    size,
    open: () => createReadStream(file, { highWaterMark }),
    close,
  };
}
