/**
 * Request validation as the API does it, with messages naming the offending field the way the API's
 * do (`messages.0.role: ...`). Only what the emulator relies on is checked; unknown parameters pass.
 */

export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

/** A content block, a system block or a tool definition. */
export interface Block {
  type?: string;
  text?: string;
  cache_control?: CacheControl;
  [field: string]: unknown;
}

interface MessageParam {
  role: 'user' | 'assistant';
  content: string | Block[];
}

export interface MessagesRequest {
  model: string;
  /** Absent for count_tokens. */
  max_tokens: number;
  messages: MessageParam[];
  system?: string | Block[];
  tools?: Block[];
  /** Answer as server-sent events (stream-reply.ts). */
  stream?: boolean;
}

/** The API's limit on blocks with cache_control in one request. */
const MAX_CACHE_BREAKPOINTS = 4;

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returns the typed request, or the message of a 400 invalid_request_error. */
export function validateMessagesRequest(
  body: unknown,
  kind: 'create' | 'count',
  maxOutputTokens: number,
): MessagesRequest | string {
  if (!isObj(body)) return 'Request body must be a JSON object.';
  const { model, max_tokens: maxTokens, messages, system, tools, stream } = body;
  if (model === undefined) return 'model: Field required';
  if (typeof model !== 'string' || model.length === 0) return 'model: Input should be a valid string';
  if (kind === 'create') {
    if (maxTokens === undefined) return 'max_tokens: Field required';
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens)) {
      return 'max_tokens: Input should be a valid integer';
    }
    if (maxTokens < 1) return 'max_tokens: Input should be greater than or equal to 1';
    if (maxTokens > maxOutputTokens) {
      return `max_tokens: ${maxTokens} > ${maxOutputTokens}, which is the maximum allowed number of output tokens for ${model}`;
    }
    if (stream !== undefined && typeof stream !== 'boolean') return 'stream: Input should be a valid boolean';
  }
  if (messages === undefined) return 'messages: Field required';
  if (!Array.isArray(messages)) return 'messages: Input should be a valid list';
  if (messages.length === 0) return 'messages: at least one message is required';
  const counter = { breakpoints: 0 };
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (!isObj(message)) return `messages.${i}: Input should be a valid dictionary`;
    if (message.role !== 'user' && message.role !== 'assistant') {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    const content = message.content;
    if (content === undefined) return `messages.${i}.content: Field required`;
    const isLastAssistant = i === messages.length - 1 && message.role === 'assistant';
    if (typeof content === 'string') {
      if (content.length === 0 && !isLastAssistant) {
        return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
      }
    } else if (Array.isArray(content)) {
      if (content.length === 0 && !isLastAssistant) {
        return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
      }
      const problem = checkBlocks(content, `messages.${i}.content`, counter, false);
      if (problem !== null) return problem;
    } else {
      return `messages.${i}.content: Input should be a valid string or a list of content blocks`;
    }
  }
  if (system !== undefined && typeof system !== 'string') {
    if (!Array.isArray(system)) return 'system: Input should be a valid string or a list of text blocks';
    const problem = checkBlocks(system, 'system', counter, true);
    if (problem !== null) return problem;
  }
  if (tools !== undefined) {
    if (!Array.isArray(tools)) return 'tools: Input should be a valid list';
    for (let i = 0; i < tools.length; i++) {
      const tool: unknown = tools[i];
      if (!isObj(tool)) return `tools.${i}: Input should be a valid dictionary`;
      if (tool.cache_control != null) {
        const problem = checkCacheControl(tool.cache_control, `tools.${i}.cache_control`, counter);
        if (problem !== null) return problem;
      }
    }
  }
  if (counter.breakpoints > MAX_CACHE_BREAKPOINTS) {
    return `A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${counter.breakpoints}.`;
  }
  return body as unknown as MessagesRequest;
}

function checkBlocks(
  blocks: readonly unknown[],
  path: string,
  counter: { breakpoints: number },
  textOnly: boolean,
): string | null {
  for (let j = 0; j < blocks.length; j++) {
    const block = blocks[j];
    if (!isObj(block)) return `${path}.${j}: Input should be a valid dictionary`;
    if (typeof block.type !== 'string') return `${path}.${j}.type: Field required`;
    if (block.type === 'text') {
      if (typeof block.text !== 'string') return `${path}.${j}.text: Input should be a valid string`;
    } else if (textOnly) {
      return `${path}.${j}.type: Input should be 'text'`;
    }
    if (block.cache_control !== undefined && block.cache_control !== null) {
      const problem = checkCacheControl(block.cache_control, `${path}.${j}.cache_control`, counter);
      if (problem !== null) return problem;
    }
  }
  return null;
}

function checkCacheControl(value: unknown, path: string, counter: { breakpoints: number }): string | null {
  if (!isObj(value) || value.type !== 'ephemeral') return `${path}.type: Input should be 'ephemeral'`;
  if (value.ttl !== undefined && value.ttl !== '5m' && value.ttl !== '1h') {
    return `${path}.ttl: Input should be '5m' or '1h'`;
  }
  counter.breakpoints++;
  return null;
}
