import type { MessageParams } from '../batch/types.js';
import type { RequestEstimate } from './rate-budget.js';

/**
 * Characters per token assumed by the estimate. Claude's tokenizer averages about 3.5–4 characters
 * per token on English prose; 3 errs high on purpose, so a request is never admitted on a budget
 * it then exceeds. Settlement refunds the difference once the real usage is known.
 */
const CHARS_PER_TOKEN = 3;

/** Tokens counted per message and for the request frame, whatever the content. */
const PER_MESSAGE_OVERHEAD = 5;
const PER_REQUEST_OVERHEAD = 10;

/** Estimates a request's cost before it is sent. Fast: one walk over its text, no tokenizer. */
export function estimateRequest(params: MessageParams, outputEstimate?: number): RequestEstimate {
  let chars = textLength(params.system);
  for (const message of params.messages) {
    chars += textLength((message as { content?: unknown }).content) + PER_MESSAGE_OVERHEAD * CHARS_PER_TOKEN;
  }
  if (params['tools'] !== undefined) chars += JSON.stringify(params['tools']).length;
  return {
    model: params.model,
    inputTokens: Math.ceil(chars / CHARS_PER_TOKEN) + PER_REQUEST_OVERHEAD,
    outputTokens:
      outputEstimate !== undefined ? Math.min(outputEstimate, params.max_tokens) : params.max_tokens,
  };
}

/**
 * Input tokens counted per image block. The API resizes images to about 1.15 megapixels at most and
 * charges width x height / 750 tokens, about 1,600 at most; an image's base64 size says nothing about
 * that (a 3 MB PNG is still about 1,600 tokens), so costing it by its JSON length would dead-letter
 * ordinary vision requests as over budget. Expressed in characters, like everything else here.
 */
const IMAGE_TOKENS = 1_600;

/**
 * Characters the estimate counts for one piece of a prompt's prefix, so a caller summing pieces (the
 * auto-cache's shared prefix, which the worker leaves out of its input estimate) agrees with
 * {@link estimateRequest}: a system or message content block, a string content, a tool definition
 * (its JSON and the comma that joins it to the next) or the framing of a message.
 */
export const prefixChars = {
  content: (content: unknown): number => textLength(content),
  block: (block: unknown): number => blockLength(block),
  tool: (tool: unknown): number => JSON.stringify(tool).length + 1,
  message: PER_MESSAGE_OVERHEAD * CHARS_PER_TOKEN,
} as const;

/** Tokens for a count of characters, rounded up as {@link estimateRequest} does. */
export function charsToTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

function textLength(content: unknown): number {
  if (content === undefined || content === null) return 0;
  if (typeof content === 'string') return content.length;
  if (Array.isArray(content)) {
    let total = 0;
    for (const block of content) total += blockLength(block);
    return total;
  }
  return JSON.stringify(content).length;
}

function blockLength(block: unknown): number {
  if (!block || typeof block !== 'object') return typeof block === 'string' ? block.length : 0;
  const b = block as { type?: unknown; text?: unknown; content?: unknown };
  if (typeof b.text === 'string') return b.text.length;
  if (b.type === 'image') return IMAGE_TOKENS * CHARS_PER_TOKEN;
  // A tool result may carry text and images of its own.
  if (b.type === 'tool_result' && b.content !== undefined) return textLength(b.content) + 20;
  // Other blocks (documents, tool uses, ...) are costed by their serialised size: errs high.
  return JSON.stringify(block).length;
}
