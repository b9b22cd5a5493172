/**
 * A reply as server-sent events (`stream: true`), in the API's event sequence:
 *
 *   message_start (content [], stop_reason null, usage with output_tokens 1)
 *   content_block_start (index 0, empty text block)
 *   ping
 *   content_block_delta × n (text_delta, TOKENS_PER_DELTA tokens each)
 *   content_block_stop
 *   message_delta (stop_reason, stop_sequence, usage with the final output_tokens)
 *   message_stop
 *
 * Accumulated (as the SDK's MessageStream does), the events give exactly the message the
 * non-streamed call returns for the same prompt and seed, id aside. Pacing: the headers and
 * message_start go out after `firstMs` (the fixed latency and jitter), then each delta after
 * `perOutputTokenMs` × its tokens, so a long generation streams steadily. With no latency everything
 * goes out in one write.
 *
 * A mid-stream fault after K deltas ends the stream with `event: error` carrying the API's error
 * body (what the API does when, say, it overloads mid-generation), or resets the connection.
 */
import type { ServerResponse } from 'node:http';
import { CHARS_PER_TOKEN } from './token-count.js';

/** Tokens of text per content_block_delta. */
const TOKENS_PER_DELTA = 4;
const CHARS_PER_DELTA = TOKENS_PER_DELTA * CHARS_PER_TOKEN;

export interface StreamedMessage {
  id: string;
  model: string;
  text: string;
  stopReason: string;
  usage: {
    input_tokens: number;
    cache_creation_input_tokens: number;
    cache_read_input_tokens: number;
    output_tokens: number;
  };
}

export interface StreamFault {
  afterDeltas: number;
  /** The `event: error` body, or null to reset the connection. */
  errorBody: string | null;
}

export interface StreamTiming {
  firstMs: number;
  perOutputTokenMs: number;
  /** Runs `fn` after `ms`, cancellable when the emulator closes (EmulatorState.later). */
  later(ms: number, fn: () => void): void;
}

function event(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}

/** The events before the first delta. */
function head(m: StreamedMessage): string {
  const start = JSON.stringify({
    type: 'message_start',
    message: {
      id: m.id,
      type: 'message',
      role: 'assistant',
      model: m.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...m.usage, output_tokens: 1 },
    },
  });
  return (
    event('message_start', start) +
    event(
      'content_block_start',
      '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    ) +
    event('ping', '{"type": "ping"}')
  );
}

function delta(text: string): string {
  return event(
    'content_block_delta',
    `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(text)}}}`,
  );
}

function tail(m: StreamedMessage): string {
  const messageDelta = JSON.stringify({
    type: 'message_delta',
    delta: { stop_reason: m.stopReason, stop_sequence: null },
    usage: m.usage,
  });
  return (
    event('content_block_stop', '{"type":"content_block_stop","index":0}') +
    event('message_delta', messageDelta) +
    event('message_stop', '{"type":"message_stop"}')
  );
}

/** The text cut into deltas of TOKENS_PER_DELTA tokens (the last may be shorter). */
function deltaTexts(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += CHARS_PER_DELTA) out.push(text.slice(i, i + CHARS_PER_DELTA));
  return out;
}

/**
 * Streams the message. `headers` are sent with the 200; `onStart` runs as they and message_start go
 * out (not if the client left before: nothing began); `onEnd` runs once the stream is over (sent
 * whole, cut by a fault, or abandoned by the client).
 */
export function streamMessage(
  res: ServerResponse,
  headers: readonly string[],
  m: StreamedMessage,
  timing: StreamTiming,
  fault: StreamFault | null,
  onStart: () => void,
  onEnd: () => void,
): void {
  const deltas = deltaTexts(m.text);
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  res.once('close', end);
  const failAt = fault === null ? Number.POSITIVE_INFINITY : Math.min(fault.afterDeltas, deltas.length);

  const finish = (chunk: string): void => {
    if (fault !== null && failAt <= deltas.length) {
      if (fault.errorBody === null) {
        // Whatever was written is flushed first, so the client sees a stream cut short, not no stream.
        res.write(chunk, () => res.destroy());
        return;
      }
      res.end(chunk + event('error', fault.errorBody), end);
      return;
    }
    res.end(chunk + tail(m), end);
  };

  timing.later(timing.firstMs, () => {
    if (res.destroyed) return end();
    res.writeHead(200, [
      'content-type',
      'text/event-stream; charset=utf-8',
      'cache-control',
      'no-cache',
      ...headers,
    ]);
    onStart();
    const first = head(m);
    if (timing.perOutputTokenMs <= 0) {
      // No pacing: one write.
      let body = first;
      const upTo = Math.min(failAt, deltas.length);
      for (let i = 0; i < upTo; i++) body += delta(deltas[i] ?? '');
      finish(body);
      return;
    }
    let i = 0;
    const step = (chunk: string): void => {
      if (res.destroyed) return end();
      if (i >= failAt || i >= deltas.length) {
        finish(chunk);
        return;
      }
      const text = deltas[i++] ?? '';
      res.write(chunk);
      const ms = timing.perOutputTokenMs * Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN));
      timing.later(ms, () => step(delta(text)));
    };
    step(first);
  });
}
