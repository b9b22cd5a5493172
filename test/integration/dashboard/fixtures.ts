import { releaseCanary } from '../../../src/queue/canary.js';
import { inputSource } from '../../../src/batch/input-source.js';
import type { Alerter } from '../../../src/breakers/alert.js';
import { countModelFailure, tripKeyBreaker } from '../../../src/breakers/breakers.js';
import { RULES_BY_TYPE } from '../../../src/errors/error-table.js';
import { requestJobId, type DeadLetterEntry } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { dispatchAll } from '../../helpers/dispatch.js';
import type { Runtime } from '../../../src/runtime.js';
import { canceledLine, erroredLine, succeededLine } from '../../../src/store/result-line.js';

export const MODEL = 'claude-haiku-4-5';
export const TOTAL = 10;
/** Per succeeded request. */
export const USAGE = {
  input_tokens: 1_000,
  output_tokens: 500,
  cache_creation_input_tokens: 200,
  cache_read_input_tokens: 300,
};
export const SUCCEEDED = 4;
/** What the seeded state adds up to, for assertions. */
export const EXPECTED = {
  succeeded: SUCCEEDED,
  errored: 2,
  canceled: 1,
  processing: TOTAL - SUCCEEDED - 2 - 1,
  truncated: 1,
  refused: 1,
  /** Succeeded and errored requests each end with a call; plus one per retry. */
  retries: { overloaded_error: 2, rate_limit_error: 1 } as Record<string, number>,
  calls: SUCCEEDED + 2 + 3,
  errors: { invalid_request_error: 1, overloaded_error: 1 } as Record<string, number>,
  /** Haiku 4.5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per MTok. */
  costUsd: (SUCCEEDED * (1_000 * 1 + 500 * 5 + 200 * 1.25 + 300 * 0.1)) / 1e6,
};

function requestLine(i: number): string {
  return JSON.stringify({
    custom_id: `req-${i}`,
    params: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `Summarise item ${i}` }] },
  });
}

function message(customId: string, stopReason: string): string {
  return JSON.stringify({
    id: `msg_${customId}`,
    type: 'message',
    role: 'assistant',
    model: MODEL,
    content: [{ type: 'text', text: `summary of ${customId}` }],
    stop_reason: stopReason,
    stop_sequence: null,
    usage: USAGE,
  });
}

/**
 * A batch part way through, written through the runner's own functions: submitted, 4 succeeded
 * (one truncated, one refused), 2 errored and dead-lettered, 1 canceled, 3 still queued, plus
 * retries counted along the way. The jobs of ended requests are removed, as the worker does.
 */
export async function seedBatch(runtime: Runtime, batchId = 'batch_dashboard_demo'): Promise<string> {
  const data = Buffer.from(Array.from({ length: TOTAL }, (_, i) => requestLine(i)).join('\n') + '\n');
  const submitted = await submitBatch(runtime, {
    input: inputSource('dashboard-demo.jsonl', async function* () {
      yield data;
    }),
    batchId,
  });
  const id = submitted.batchId;
  // Jobs, as the canary's release and a worker's dispatcher would make them: the states below are
  // set job by job.
  await releaseCanary(runtime, id, MODEL);
  await dispatchAll(runtime, id);
  const done = async (i: number) => {
    await runtime.requests.remove(requestJobId(id, `req-${i}`, 0));
  };

  for (let i = 0; i < SUCCEEDED; i++) {
    const stop = i === 1 ? 'max_tokens' : i === 2 ? 'refusal' : 'end_turn';
    await runtime.store.finalize(id, `req-${i}`, 0, {
      kind: 'succeeded',
      line: succeededLine(`req-${i}`, message(`req-${i}`, stop)),
      usage: USAGE,
      truncated: stop === 'max_tokens',
      refused: stop === 'refusal',
      called: true,
    });
    await done(i);
  }
  await runtime.store.countRetry('overloaded_error');
  await runtime.store.countRetry('overloaded_error');
  await runtime.store.countRetry('rate_limit_error');

  const failures: [number, string, number, DeadLetterEntry['reason'], string][] = [
    [4, 'invalid_request_error', 400, 'terminal', 'max_tokens: Field required'],
    [5, 'overloaded_error', 529, 'retries_exhausted', 'Overloaded'],
  ];
  for (const [i, type, status, reason, text] of failures) {
    const job = await runtime.requests.getJob(requestJobId(id, `req-${i}`, 0));
    const jobData = job!.data;
    const entry: DeadLetterEntry = {
      batch_id: id,
      custom_id: `req-${i}`,
      index: i,
      gen: 0,
      params: jobData.params,
      status,
      error_type: type,
      reason,
      message: text,
      request_id: `req_0${i}`,
      attempts: type === 'overloaded_error' ? 3 : 1,
      failed_at: new Date().toISOString(),
      first_attempt_at: new Date(Date.now() - 60_000).toISOString(),
    };
    await runtime.deadLetters.add(entry.params.model, entry, {
      jobId: requestJobId(id, entry.custom_id, entry.gen),
    });
    await runtime.store.finalize(id, entry.custom_id, 0, {
      kind: 'errored',
      line: erroredLine(entry.custom_id, type, text, entry.request_id),
      errorType: type,
      called: true,
    });
    await done(i);
  }

  await runtime.store.finalize(id, 'req-6', 0, { kind: 'canceled', line: canceledLine('req-6') });
  await done(6);
  return id;
}

const noAlert: Alerter = async () => {};

/** Trips the key breaker as the worker does: records it and pauses the queue. */
export async function tripBillingBreaker(
  runtime: Runtime,
  message = 'Your credit balance is too low to access the Anthropic API.',
): Promise<void> {
  await tripKeyBreaker(
    runtime,
    { status: 402, type: 'billing_error', message, request_id: 'req_key_1' },
    RULES_BY_TYPE['billing_error']!,
    noAlert,
  );
}

/** Opens the model breaker of a retired model, as the worker does at the threshold. */
export async function tripModelBreaker(
  runtime: Runtime,
  model = 'claude-opus-4-1',
  message = `model: ${model}`,
): Promise<void> {
  await countModelFailure(
    runtime,
    model,
    { status: 404, type: 'not_found_error', message, request_id: 'req_model_1' },
    RULES_BY_TYPE['not_found_error']!,
    1,
    noAlert,
  );
}
