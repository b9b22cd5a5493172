/**
 * One pass over a request's prompt that yields everything the emulator needs from it: the prompt hash
 * (log, attempt counting, fault draws, reply fingerprint), the input token count (token-count.ts),
 * the cache breakpoints (prompt-cache.ts) and the texts that may hold markers (markers.ts).
 *
 * The prompt hash is the first 12 hex digits of sha256 over a canonical encoding of
 * (model, tools, system, messages): each piece is written as a tag, its length and its text, so
 * `"abc"` and `[{"type":"text","text":"abc"}]` hash alike (the API treats them alike), `cache_control`
 * does not count, and other parameters (max_tokens, temperature, metadata...) are left out.
 */
import { hash } from 'node:crypto';
import { FIVE_MINUTES_MS, ONE_HOUR_MS, type CacheBreakpoint } from './prompt-cache.js';
import { MESSAGE_OVERHEAD_TOKENS, jsonTokens, textTokens } from './token-count.js';
import type { Block, CacheControl, MessagesRequest } from './validate-request.js';

const PROMPT_HASH_LENGTH = 12;

export interface PromptAnalysis {
  promptHash: string;
  /** All input tokens, before the cache splits them. */
  inputTokens: number;
  breakpoints: CacheBreakpoint[] | null;
  /** Texts containing "@@", or null when none does (the common case costs one indexOf per text). */
  markerTexts: string[] | null;
}

export type PromptParams = Pick<MessagesRequest, 'model' | 'messages' | 'system' | 'tools'>;

interface Walk {
  canon: string;
  tokens: number;
  marks: Array<{ length: number; tokens: number; ttlMs: number }> | null;
  markerTexts: string[] | null;
}

function addText(w: Walk, tag: string, text: string): void {
  w.canon += `${tag}${text.length}:${text}`;
  w.tokens += textTokens(text);
  if (text.includes('@@')) (w.markerTexts ??= []).push(text);
}

function addJson(w: Walk, block: Block): void {
  const { cache_control: _ignored, ...rest } = block;
  const json = JSON.stringify(rest);
  w.canon += `J${json.length}:${json}`;
  w.tokens += jsonTokens(json);
  if (json.includes('@@')) (w.markerTexts ??= []).push(json);
}

function addBlock(w: Walk, tag: string, block: Block): void {
  if (block.type === 'text' && typeof block.text === 'string') addText(w, tag, block.text);
  else addJson(w, block);
  if (block.cache_control != null) mark(w, block.cache_control);
}

function mark(w: Walk, cacheControl: CacheControl): void {
  (w.marks ??= []).push({
    length: w.canon.length,
    tokens: w.tokens,
    ttlMs: cacheControl.ttl === '1h' ? ONE_HOUR_MS : FIVE_MINUTES_MS,
  });
}

/** Expects a request that passed validation (replyFingerprint tolerates anything shaped like one). */
export function analyzePrompt(params: PromptParams): PromptAnalysis {
  const w: Walk = {
    canon: `${params.model.length}:${params.model}`,
    tokens: 0,
    marks: null,
    markerTexts: null,
  };
  if (Array.isArray(params.tools)) {
    for (const tool of params.tools) addJson(w, tool);
    // The tools form one piece of the prefix: a cache_control on any of them closes it after the last.
    const marked = params.tools.find((tool) => tool.cache_control != null);
    if (marked?.cache_control != null) mark(w, marked.cache_control);
  }
  const system = params.system;
  if (typeof system === 'string') addText(w, 'S', system);
  else if (Array.isArray(system)) for (const block of system) addBlock(w, 'S', block);
  for (const message of params.messages) {
    w.canon += message.role === 'user' ? 'U' : 'A';
    w.tokens += MESSAGE_OVERHEAD_TOKENS;
    const content = message.content;
    if (typeof content === 'string') addText(w, 'B', content);
    else for (const block of content) addBlock(w, 'B', block);
  }
  const canon = w.canon;
  return {
    promptHash: hash('sha256', canon).slice(0, PROMPT_HASH_LENGTH),
    inputTokens: w.tokens,
    breakpoints:
      w.marks === null
        ? null
        : w.marks.map((m) => ({
            key: hash('sha256', canon.slice(0, m.length)).slice(0, 32),
            tokens: m.tokens,
            ttlMs: m.ttlMs,
          })),
    markerTexts: w.markerTexts,
  };
}
