import type { RequestDefaults } from './batch/validate-request.js';
import type { ClaudeClient } from './claude/claude-client.js';
import type { RateBudget } from './limits/rate-budget.js';
import { submitBatch, type SubmitResult } from './queue/producer.js';
import { routePlanOf, type Via } from './hosted/route.js';
import type { Runtime } from './runtime.js';
import type { BatchStatus } from './operations/batch-status.js';
import { exportResults } from './operations/export-results.js';
import { waitForBatch } from './operations/wait-for-batch.js';
import { startWorker } from './worker/start-worker.js';
import type { Secret } from './secret.js';
import type { PriceTable } from './pricing/price-table.js';

export interface RunBatchOptions {
  /** The JSONL file to submit (see SubmitOptions.input); `-` for standard input. */
  input: string;
  /** Where the results JSONL goes, written atomically (via `FILE.partial`). */
  out: string;
  /** Default: derived from the content, so running the same file again resumes that batch. */
  batchId?: string | undefined;
  /** Model, max_tokens and system of shorthand lines. Default none. */
  defaults?: RequestDefaults | undefined;
  /** Invalid lines to report (0: all). Default 20. */
  maxErrors?: number | undefined;
  /** Default true: see SubmitOptions.canary. */
  canary?: boolean | undefined;
  /** Fair-share weight against other batches: see SubmitOptions.priority. Default 1. */
  priority?: number | undefined;
  /** Automatic prompt caching of the shared prefix: see SubmitOptions.autoCache. Default true. */
  autoCache?: boolean | undefined;
  /** Hard cost ceiling in USD: see SubmitOptions.maxCost. Default: the config's (CLAUDE_BATCH_MAX_COST), else none. */
  maxCost?: number | undefined;
  /** The path its requests take (`live`, `batches`, `auto`): see SubmitOptions.via. Default `live`. */
  via?: Via | undefined;
  /** When it must be done (a duration, an RFC 3339 time or a Date): see SubmitOptions.deadline. */
  deadline?: string | number | Date | undefined;
  /** Prices frozen into the batch: see SubmitOptions.prices. Default: the built-in list prices. */
  prices?: PriceTable | undefined;
  /** Order of the results file: `any` (fastest) or `input`. Default `any`. */
  order?: 'any' | 'input' | undefined;
  /** Default: an SDK client from the config (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL). */
  client?: ClaudeClient | undefined;
  /** Default: the shared budget from the config's rpm/itpm/otpm and budgets file. */
  budget?: RateBudget | undefined;
  /** Default: the config's ANTHROPIC_API_KEY. */
  apiKey?: Secret | undefined;
  /** Called with the batch id before anything is enqueued, so a killed run can be resumed. */
  onBatchId?: ((batchId: string) => void) | undefined;
  /** Called with each status read while waiting (every 500 ms). */
  onStatus?: ((status: BatchStatus) => void) | undefined;
  /** Stops waiting: rejects with the signal's reason; the worker is closed, the batch stays queued. */
  signal?: AbortSignal | undefined;
}

export interface RunBatchResult {
  submit: SubmitResult;
  /** The batch's final status (`processing_status: 'ended'`). */
  status: BatchStatus;
  /** Lines written to `out`: one per request. */
  resultsWritten: number;
}

/**
 * The whole story in one call: submit, work the batch in this process (the same worker, budgets
 * and guarantees as separate worker processes, which may run alongside), wait for it to end, and
 * write the results file.
 */
export async function runBatch(runtime: Runtime, options: RunBatchOptions): Promise<RunBatchResult> {
  const submit = await submitBatch(runtime, {
    input: options.input,
    batchId: options.batchId,
    defaults: options.defaults,
    maxErrors: options.maxErrors,
    canary: options.canary,
    priority: options.priority,
    autoCache: options.autoCache,
    maxCost: options.maxCost ?? runtime.config.maxCost,
    via: options.via,
    deadline: options.deadline,
    routePlan: routePlanOf(runtime.config),
    prices: options.prices,
    onBatchId: options.onBatchId,
  });
  const worker = await startWorker(runtime, {
    client: options.client,
    budget: options.budget,
    apiKey: options.apiKey,
  });
  try {
    const status = await waitForBatch(runtime, submit.batchId, {
      onStatus: options.onStatus,
      signal: options.signal,
    });
    const resultsWritten = await exportResults(runtime, submit.batchId, options.out, {
      order: options.order,
    });
    return { submit, status, resultsWritten };
  } finally {
    await worker.close();
  }
}
