import Anthropic from '@anthropic-ai/sdk';
import type { MessageParams } from '../batch/types.js';
import { DEFAULT_STREAM_MIN_MAX_TOKENS } from '../config/load-config.js';
import { headersToRecord, toApiFailure, type ApiFailure } from '../errors/api-failure.js';
import type { Secret } from '../secret.js';

export interface ClaudeClientOptions {
  apiKey: Secret;
  /** Default: the SDK's (ANTHROPIC_BASE_URL, else the real API). */
  baseURL?: string | undefined;
  /**
   * Timeout of one call in ms; required, since the SDK refuses large max_tokens without one. For a
   * streamed call it is an idle timeout: the longest wait for the next bytes, however long the
   * whole generation takes.
   */
  timeoutMs: number;
  /**
   * Requests with at least this max_tokens are sent as streams (`messages.stream`), so a long
   * generation is never cut by a total timeout and sent again. Default {@link DEFAULT_STREAM_MIN_MAX_TOKENS}.
   */
  streamMinMaxTokens?: number | undefined;
}

/** The usage block of a Message, as the API reports it. */
export interface MessageUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

export type CallResult =
  | {
      ok: true;
      /** The Message as JSON text, stored as is. */
      messageJson: string;
      usage: MessageUsage;
      stopReason: string | null;
      requestId: string | null;
      headers: Record<string, string>;
    }
  | { ok: false; failure: ApiFailure };

/** What a caller may learn while a call is under way. */
interface CallHooks {
  /**
   * Called once, when the API has accepted the request and begun its answer (the stream's
   * `message_start`): key, credit and model are proven by then, long before a long generation
   * ends. Setting it sends the request as a stream whatever its max_tokens.
   */
  onAccepted?: (() => void) | undefined;
}

export interface ClaudeClient {
  /** Sends one Messages request. Never throws for an API or network failure: it returns it. */
  call(params: MessageParams, signal?: AbortSignal, hooks?: CallHooks): Promise<CallResult>;
}

/**
 * The SDK client the runner uses: `maxRetries: 0`, because retries are the runner's (a retry
 * inside the SDK would be invisible to the budget and the retry-after bookkeeping).
 */
export function createClaudeClient(options: ClaudeClientOptions): ClaudeClient {
  const client = new Anthropic({
    apiKey: options.apiKey.reveal(),
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    maxRetries: 0,
    timeout: options.timeoutMs,
  });
  const streamFrom = options.streamMinMaxTokens ?? DEFAULT_STREAM_MIN_MAX_TOKENS;
  return {
    async call(params, signal, hooks) {
      if (params.max_tokens >= streamFrom || hooks?.onAccepted) {
        return callStreamed(client, params, options.timeoutMs, signal, hooks?.onAccepted);
      }
      try {
        const { data, response, request_id } = await client.messages
          .create({ ...(params as Anthropic.MessageCreateParamsNonStreaming), stream: false }, { signal })
          .withResponse();
        return succeeded(data, request_id ?? response.headers.get('request-id'), response.headers);
      } catch (err) {
        return { ok: false, failure: toApiFailure(err) };
      }
    },
  };
}

function succeeded(message: Anthropic.Message, requestId: string | null, headers: Headers): CallResult {
  return {
    ok: true,
    messageJson: JSON.stringify(message),
    usage: message.usage,
    stopReason: message.stop_reason ?? null,
    requestId,
    headers: headersToRecord(headers),
  };
}

/**
 * Sends one request as a stream and returns the whole Message, shaped exactly as a non-streamed
 * call returns it. The timeout is an idle one: it is re-armed by every event (pings included), so a
 * generation of any length that keeps streaming is never cut. A failure once the stream has begun
 * (an idle timeout, a reset, an `error` event mid-stream) may have been billed.
 */
async function callStreamed(
  client: Anthropic,
  params: MessageParams,
  idleMs: number,
  signal: AbortSignal | undefined,
  onAccepted: (() => void) | undefined,
): Promise<CallResult> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let idle = false;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      controller.abort();
    }, idleMs);
  };
  arm();
  const stream = client.messages.stream(params as Anthropic.MessageStreamParams, {
    signal: controller.signal,
    timeout: idleMs,
  });
  stream.on('streamEvent', (event) => {
    if (!started && event.type === 'message_start') onAccepted?.();
    started = true;
    arm();
  });
  try {
    const message = await stream.finalMessage();
    return succeeded(asSent(message), stream.request_id ?? null, stream.response?.headers ?? new Headers());
  } catch (err) {
    const failure = toApiFailure(err);
    if (idle) {
      return {
        ok: false,
        failure: {
          ...failure,
          status: null,
          transport: 'timeout',
          message: `No bytes for ${Math.round(idleMs / 1000)} s ${started ? 'in the middle of a streamed answer' : 'before the answer began'} (idle timeout).`,
          maybeBilled: true,
        },
      };
    }
    // An `error` event or a cut after the first event: the API was generating, and may bill it.
    return { ok: false, failure: started ? { ...failure, maybeBilled: true } : failure };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The Message as the API sent it: the SDK's accumulated message carries keys of its own (a
 * `parsed_output` for structured outputs), which a results line must not.
 */
function asSent(message: Anthropic.Message): Anthropic.Message {
  const { parsed_output: _parsed, ...sent } = message as Anthropic.Message & { parsed_output?: unknown };
  return sent;
}
