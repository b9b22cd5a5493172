import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { once } from 'node:events';
import type { Runtime } from '../runtime.js';

export interface ExportResultsOptions {
  /** `any` (storage order, fastest) or `input` (the input file's order). Default `any`. */
  order?: 'any' | 'input' | undefined;
}

/**
 * Writes the batch's results JSONL to a stream. Returns the number of lines written. Respects
 * backpressure, so exporting a million results holds one page in memory at a time.
 */
export async function writeResults(
  runtime: Runtime,
  batchId: string,
  out: NodeJS.WritableStream,
  options: ExportResultsOptions = {},
): Promise<number> {
  let lines = 0;
  for await (const line of runtime.store.results(batchId, options.order ?? 'any')) {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
    lines += 1;
  }
  return lines;
}

/**
 * Writes the results to a file, atomically: to `FILE.partial` first, renamed when complete, so a
 * reader never sees half a results file.
 */
export async function exportResults(
  runtime: Runtime,
  batchId: string,
  file: string,
  options: ExportResultsOptions = {},
): Promise<number> {
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  try {
    const lines = await writeResults(runtime, batchId, out, options);
    out.end();
    await once(out, 'finish');
    await rename(partial, file);
    return lines;
  } catch (err) {
    out.destroy();
    throw err;
  }
}
