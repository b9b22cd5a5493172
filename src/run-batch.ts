import type { RequestDefaults } from './batch/validate-request.js';
import type { ClaudeClient } from './claude/claude-client.js';
import type { RateBudget } from './limits/rate-budget.js';
import { submitBatch, type SubmitResult } from './queue/producer.js';
import type { Runtime } from './runtime.js';
import type { BatchStatus } from './store/batch-status.js';
import { exportResults } from './store/export-results.js';
import { waitForBatch } from './store/wait-for-batch.js';
import { startWorker } from './worker/start-worker.js';
import type { Secret } from './secret.js';

export interface RunBatchOptions {
  input: string;
  /** Where the results JSONL goes. */
  out: string;
  batchId?: string;
  defaults?: RequestDefaults;
  maxErrors?: number;
  /** Default true: see SubmitOptions.canary. */
  canary?: boolean;
  order?: 'any' | 'input';
  client?: ClaudeClient;
  budget?: RateBudget;
  apiKey?: Secret;
  onBatchId?: (batchId: string) => void;
  onStatus?: (status: BatchStatus) => void;
  signal?: AbortSignal;
}

export interface RunBatchResult {
  submit: SubmitResult;
  status: BatchStatus;
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
