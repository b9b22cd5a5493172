import Anthropic from '@anthropic-ai/sdk';
import type { MessageParams } from '../batch/types.js';
import { headersToRecord, toApiFailure, type ApiFailure } from '../errors/api-failure.js';
import type { Secret } from '../secret.js';

export interface ClaudeClientOptions {
  apiKey: Secret;
  /** Default: the SDK's (ANTHROPIC_BASE_URL, else the real API). */
  baseURL?: string | undefined;
  /** Timeout of one call in ms; required, since the SDK refuses large max_tokens without one. */
  timeoutMs: number;
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

export interface ClaudeClient {
  /** Sends one Messages request. Never throws for an API or network failure: it returns it. */
  call(params: MessageParams, signal?: AbortSignal): Promise<CallResult>;
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
  return {
    async call(params, signal) {
      try {
        const { data, response, request_id } = await client.messages
          .create({ ...(params as Anthropic.MessageCreateParamsNonStreaming), stream: false }, { signal })
          .withResponse();
        return {
          ok: true,
          messageJson: JSON.stringify(data),
          usage: data.usage as MessageUsage,
          stopReason: data.stop_reason ?? null,
          requestId: request_id ?? response.headers.get('request-id'),
          headers: headersToRecord(response.headers),
        };
      } catch (err) {
        return { ok: false, failure: toApiFailure(err) };
      }
    },
  };
}
