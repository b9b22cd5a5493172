import Anthropic from '@anthropic-ai/sdk';
import type { MessageParams } from '../batch/types.js';
import { toApiFailure, type ApiFailure } from '../errors/api-failure.js';
import type { Secret } from '../secret.js';

/** One request of a hosted batch, as the Message Batches API takes it. */
export interface HostedRequest {
  custom_id: string;
  params: MessageParams;
}

/** Counts of a hosted batch, as the API reports them (all `processing` until it ends). */
export interface HostedCounts {
  processing: number;
  succeeded: number;
  errored: number;
  canceled: number;
  expired: number;
}

/** What the runner reads of a hosted batch object. */
export interface HostedBatch {
  id: string;
  processing_status: 'in_progress' | 'canceling' | 'ended';
  request_counts: HostedCounts;
  created_at: string;
  ended_at: string | null;
}

/** One line of a hosted batch's results, as the API documents it. */
export interface HostedResultLine {
  custom_id: string;
  result:
    | { type: 'succeeded'; message: unknown }
    | { type: 'errored'; error: unknown }
    | { type: 'canceled' }
    | { type: 'expired' };
}

/** A hosted call that failed: the failure as the error table reads it (status, type, headers). */
export class HostedApiError extends Error {
  override name = 'HostedApiError';
  constructor(
    readonly operation: string,
    readonly failure: ApiFailure,
  ) {
    super(`${operation}: ${failure.status ?? failure.transport ?? 'failed'} ${failure.message}`);
  }
}

/**
 * The hosted Message Batches endpoints the runner uses (SDK `client.messages.batches`). Every
 * method throws {@link HostedApiError} on a failed call; none retries by itself: the hosted runner
 * decides (it honours `retry-after` and must not create a batch twice behind our back).
 */
export interface HostedApi {
  /** Creates a hosted batch of these requests, read once as they are sent (the body is streamed). */
  create(requests: AsyncIterable<HostedRequest>, signal?: AbortSignal): Promise<HostedBatch>;
  retrieve(id: string, signal?: AbortSignal): Promise<HostedBatch>;
  /** Hosted batches of the workspace, newest first, page by page. */
  list(signal?: AbortSignal): AsyncIterable<HostedBatch>;
  cancel(id: string, signal?: AbortSignal): Promise<HostedBatch>;
  delete(id: string, signal?: AbortSignal): Promise<void>;
  /** The batch's results (only once it ended), line by line in no particular order. */
  results(id: string, signal?: AbortSignal): AsyncIterable<HostedResultLine>;
}

export interface HostedApiOptions {
  apiKey: Secret;
  baseURL?: string | undefined;
  /** Timeout of one call (ms); a create of 256 MB takes a while to upload. */
  timeoutMs: number;
}

/** The SDK's `messages.batches`, with `maxRetries: 0` (retries are the hosted runner's). */
export function createHostedApi(options: HostedApiOptions): HostedApi {
  const client = new Anthropic({
    apiKey: options.apiKey.reveal(),
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    maxRetries: 0,
    timeout: options.timeoutMs,
  });
  const batches = client.messages.batches;
  const call = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw new HostedApiError(operation, toApiFailure(err));
    }
  };
  return {
    // The SDK's `batches.create` serialises the whole body at once (a 256 MB chunk then sits in
    // memory several times over: job data, the JSON string, the fetch buffer); its client posts a
    // stream body as it is read, so the same endpoint gets the body a megabyte at a time.
    create: (requests, signal) =>
      call('create', async () =>
        toBatch(
          await client.post<Anthropic.Messages.MessageBatch>('/v1/messages/batches', {
            body: createBody(requests),
            headers: { 'content-type': 'application/json' },
            signal: signal ?? null,
          }),
        ),
      ),
    retrieve: (id, signal) =>
      call('retrieve', async () => toBatch(await batches.retrieve(id, {}, { signal: signal ?? null }))),
    list: (signal) => ({
      async *[Symbol.asyncIterator]() {
        const first = await call('list', () => batches.list({ limit: 100 }, { signal: signal ?? null }));
        for (let page = first; ;) {
          for (const batch of page.data) yield toBatch(batch);
          if (!page.hasNextPage()) return;
          page = await call('list', () => page.getNextPage());
        }
      },
    }),
    cancel: (id, signal) =>
      call('cancel', async () => toBatch(await batches.cancel(id, {}, { signal: signal ?? null }))),
    delete: (id, signal) =>
      call('delete', async () => {
        await batches.delete(id, {}, { signal: signal ?? null });
      }),
    results: (id, signal) => ({
      async *[Symbol.asyncIterator]() {
        const decoder = await call('results', () => batches.results(id, {}, { signal: signal ?? null }));
        const iterator = decoder[Symbol.asyncIterator]();
        for (;;) {
          const next = await call('results', () => iterator.next());
          if (next.done) return;
          yield next.value;
        }
      },
    }),
  };
}

/** Bytes a create body is sent in. */
const BODY_CHUNK = 1 << 20;

/** `{"requests":[...]}` as UTF-8 chunks of about {@link BODY_CHUNK} bytes, each request serialised as it comes. */
async function* createBody(requests: AsyncIterable<HostedRequest>): AsyncGenerator<Uint8Array> {
  let pending = '{"requests":[';
  let first = true;
  for await (const request of requests) {
    pending += (first ? '' : ',') + JSON.stringify(request);
    first = false;
    if (pending.length >= BODY_CHUNK) {
      yield Buffer.from(pending);
      pending = '';
    }
  }
  yield Buffer.from(`${pending}]}`);
}

function toBatch(batch: Anthropic.Messages.MessageBatch): HostedBatch {
  return {
    id: batch.id,
    processing_status: batch.processing_status,
    request_counts: { ...batch.request_counts },
    created_at: batch.created_at,
    ended_at: batch.ended_at,
  };
}
