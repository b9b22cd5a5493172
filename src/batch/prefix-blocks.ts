/**
 * A request's prompt as the sequence of blocks prompt caching sees, in the API's order: tools, then
 * system, then each message's content blocks (../shared/docs/anthropic-api.md, prompt caching:
 * "Everything before the breakpoint (tools, then system, then messages) is the cached prefix").
 * Each block is compared as canonical JSON (a plain text block as its text) and chained into a prefix
 * key, so two requests share their first k blocks exactly when their k-th keys are equal.
 */
import { createHash } from 'node:crypto';
import { charsToTokens, prefixChars } from '../limits/estimate-tokens.js';
import { canonicalJson } from './canonical-json.js';
import type { MessageParams } from './types.js';

/** Where a block sits in the request, so a breakpoint can be placed on it. */
export type BlockLocation =
  | { kind: 'tool'; index: number }
  /** `index` 0 of a string system: the breakpoint turns it into one text block. */
  | { kind: 'system'; index: number; fromString: boolean }
  | { kind: 'message'; message: number; index: number };

export interface PrefixBlock {
  /** Key of the prefix ending with this block (a hash chained over every block so far). */
  key: string;
  /** Key of the prefix before it ('' for the first block). */
  parentKey: string;
  /** Estimated characters from the start of the prompt up to and including this block (estimate-tokens.ts). */
  chars: number;
  /** Whether a `cache_control` may go on this block without any other rewrite (see {@link isMarkable}). */
  markable: boolean;
  location: BlockLocation;
}

/**
 * Block types the API accepts `cache_control` on (SDK 1.14 `resources/messages/messages.d.ts`:
 * TextBlockParam, ImageBlockParam, DocumentBlockParam, SearchResultBlockParam, ToolUseBlockParam,
 * ToolResultBlockParam each declare `cache_control?: CacheControlEphemeral`); thinking blocks do not.
 */
const MARKABLE_TYPES: ReadonlySet<string> = new Set([
  'text',
  'image',
  'document',
  'search_result',
  'tool_use',
  'tool_result',
]);

/** A content block that can carry a breakpoint. An empty text block cannot: the API refuses one there. */
function isMarkable(block: unknown): boolean {
  if (!isRecord(block) || typeof block['type'] !== 'string' || !MARKABLE_TYPES.has(block['type']))
    return false;
  return block['type'] !== 'text' || (typeof block['text'] === 'string' && block['text'].length > 0);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function chain(parentKey: string, canon: string): string {
  // Two updates rather than one concatenation: the canon of a long system prompt is not copied again.
  return createHash('sha256').update(parentKey).update('\n').update(canon).digest('hex').slice(0, 32);
}

/**
 * The block as compared: canonical JSON, except a plain text block (`type` and `text`, nothing else),
 * which is its text behind a tag no JSON starts with. Measured on a 12 KB system prompt: JSON-quoting
 * the text cost 34 µs a block, more than hashing it (12 µs), for nothing a tag does not give.
 */
function blockCanon(block: unknown): string {
  if (isRecord(block) && block['type'] === 'text' && typeof block['text'] === 'string') {
    const keys = Object.keys(block);
    if (keys.length === 2) return `x${block['text']}`;
  }
  return canonicalJson(block);
}

/**
 * The request's first `limit` blocks, or null when its shape is not one the runner can reason about
 * (then it is left as written; the API will judge it). A string `system` is the one text block it
 * stands for, so it shares a prefix with the same text written as a block. A string message content
 * is a block of its own kind: it cannot take a breakpoint without rewriting the message.
 */
export function prefixBlocks(params: MessageParams, limit: number): PrefixBlock[] | null {
  const found = collectBlocks(params, limit);
  if (found === null) return null;
  // Blocks after the last markable one can never end a cached prefix (a breakpoint on them is not
  // possible, and nothing markable follows): left out, unhashed. In a templated batch that is the
  // varying question, typically a string content: one hash a request saved (8.5 -> ~1 µs a request
  // on the benchmark's lines).
  let end = found.length;
  while (end > 0 && !found[end - 1]!.markable) end -= 1;
  const out: PrefixBlock[] = [];
  let key = '';
  for (let i = 0; i < end; i++) {
    const { canon, chars, markable, location } = found[i]!;
    const parentKey = key;
    key = chain(parentKey, canon);
    out.push({ key, parentKey, chars, markable, location });
  }
  return out;
}

interface FoundBlock {
  canon: string;
  /** Characters from the start of the prompt up to and including this block. */
  chars: number;
  markable: boolean;
  location: BlockLocation;
}

function collectBlocks(params: MessageParams, limit: number): FoundBlock[] | null {
  const out: FoundBlock[] = [];
  let chars = 0;
  const push = (canon: string, blockChars: number, markable: boolean, location: BlockLocation): boolean => {
    chars += blockChars;
    out.push({ canon, chars, markable, location });
    return out.length < limit;
  };

  const tools = params['tools'];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) return null;
    for (let i = 0; i < tools.length; i++) {
      const tool: unknown = tools[i];
      if (!isRecord(tool)) return null;
      if (!push(`T${canonicalJson(tool)}`, prefixChars.tool(tool), true, { kind: 'tool', index: i }))
        return out;
    }
  }

  const system = params.system;
  if (typeof system === 'string') {
    const block = { type: 'text', text: system };
    const location = { kind: 'system', index: 0, fromString: true } as const;
    if (!push(`S${blockCanon(block)}`, prefixChars.block(block), isMarkable(block), location)) return out;
  } else if (Array.isArray(system)) {
    for (let i = 0; i < system.length; i++) {
      const block: unknown = system[i];
      const location = { kind: 'system', index: i, fromString: false } as const;
      if (!push(`S${blockCanon(block)}`, prefixChars.block(block), isMarkable(block), location)) return out;
    }
  } else if (system !== undefined) {
    return null;
  }

  const messages: unknown = params.messages;
  if (!Array.isArray(messages)) return null;
  for (let m = 0; m < messages.length; m++) {
    const message: unknown = messages[m];
    if (!isRecord(message) || typeof message['role'] !== 'string') return null;
    const role = message['role'];
    const content = message['content'];
    if (typeof content === 'string') {
      const canon = `M${role}0s${content}`;
      const location = { kind: 'message', message: m, index: 0 } as const;
      if (!push(canon, prefixChars.message + prefixChars.content(content), false, location)) return out;
    } else if (Array.isArray(content)) {
      for (let j = 0; j < content.length; j++) {
        const block: unknown = content[j];
        // A message's first block carries its framing, so [A, B] in one message and A, B in two differ.
        const canon = `M${role}${j === 0 ? '0' : '+'}${blockCanon(block)}`;
        const blockChars = prefixChars.block(block) + (j === 0 ? prefixChars.message : 0);
        const location = { kind: 'message', message: m, index: j } as const;
        if (!push(canon, blockChars, isMarkable(block), location)) return out;
      }
    } else {
      return null;
    }
  }
  return out;
}

/** Estimated tokens of a prefix of `chars` characters (as estimate-tokens.ts counts them). */
export function prefixTokens(chars: number): number {
  return charsToTokens(chars);
}

/**
 * Whether the request says anything about caching: a `cache_control` key at any depth, the top-level
 * one included (SDK 1.14 `MessageCreateParamsBase.cache_control`: "automatically applies a
 * cache_control marker to the last cacheable block"), even `null`. Such a request is the author's.
 */
export function hasCacheControl(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasCacheControl);
  if (!isRecord(value)) return false;
  for (const key of Object.keys(value)) {
    if (key === 'cache_control' || hasCacheControl(value[key])) return true;
  }
  return false;
}
