/**
 * Deterministic replies. The text of every reply starts with `echo:<promptHash>` (12 hex digits, see
 * prompt-analysis.ts), so a test can tell which prompt a result belongs to: compare it with
 * `replyFingerprint(params)`. The rest is filler drawn from (seed, prompt hash).
 *
 * Length: n output tokens, where n is the `@@output_tokens:n@@` marker if present, else
 * 16 + (a hash of seed and prompt) mod 113, i.e. 16..128. If n > max_tokens the reply is cut at
 * max_tokens with stop_reason `max_tokens` (as is any reply carrying `@@stop:max_tokens@@`);
 * otherwise stop_reason is `end_turn`. A reply of n tokens has 4n characters (token-count.ts) except
 * when 4n is shorter than the fingerprint, which is always kept whole.
 */
import { analyzePrompt, type PromptParams } from './prompt-analysis.js';
import { CHARS_PER_TOKEN } from './token-count.js';

export const REPLY_PREFIX = 'echo:';
const MIN_REPLY_TOKENS = 16;
const REPLY_TOKEN_SPREAD = 113;
const REFUSAL_TEXT = " I'm not able to help with that request.";

type StopReason = 'end_turn' | 'max_tokens' | 'refusal';

export interface Reply {
  text: string;
  outputTokens: number;
  stopReason: StopReason;
}

/**
 * The fingerprint a reply to these params will start with (after `echo:`), equal to the request log's
 * promptHash. Accepts Messages create params as the SDK takes them.
 */
export function replyFingerprint(params: {
  model: string;
  messages: readonly unknown[];
  system?: unknown;
  tools?: unknown;
}): string {
  return analyzePrompt(params as unknown as PromptParams).promptHash;
}

/** A 32-bit avalanche mix (from the "lowbias32" family): cheap and well spread. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Folds any safe integer seed into 32 bits. */
function seed32(seed: number): number {
  return ((seed % 2 ** 32) ^ Math.floor(seed / 2 ** 32)) >>> 0;
}

const WORDS = (
  'the of and to in is that for it as with was on be by at this are from or an which have not but ' +
  'batch queue token model prompt reply retry limit bucket worker result cache input output budget ' +
  'request answer emulator durable steady quiet signal value record window minute second order line'
).split(' ');

export class ReplyGenerator {
  readonly #seed: number;
  /** One long seeded text the replies are cut from, so building a reply allocates a single slice. */
  readonly #filler: string;

  constructor(seed: number) {
    this.#seed = seed32(seed);
    let state = mix32(this.#seed ^ 0x9e3779b9);
    const words: string[] = [];
    let length = 0;
    while (length < 16_384) {
      state = mix32(state + 0x6d2b79f5);
      const word = WORDS[state % WORDS.length] ?? 'the';
      words.push(word);
      length += word.length + 1;
    }
    this.#filler = words.join(' ') + ' ';
  }

  /** The reply length before any max_tokens cap. */
  naturalTokens(promptHash: string): number {
    return MIN_REPLY_TOKENS + (this.#draw(promptHash) % REPLY_TOKEN_SPREAD);
  }

  #draw(promptHash: string): number {
    return mix32(parseInt(promptHash.slice(0, 8), 16) ^ this.#seed);
  }

  build(
    promptHash: string,
    maxTokens: number,
    stop: 'max_tokens' | 'refusal' | null,
    outputTokens: number | null,
  ): Reply {
    const head = `${REPLY_PREFIX}${promptHash}`;
    if (stop === 'refusal') {
      const text = head + REFUSAL_TEXT;
      return {
        text,
        outputTokens: Math.min(maxTokens, Math.ceil(text.length / CHARS_PER_TOKEN)),
        stopReason: 'refusal',
      };
    }
    const wanted = stop === 'max_tokens' ? maxTokens : (outputTokens ?? this.naturalTokens(promptHash));
    const tokens = Math.min(wanted, maxTokens);
    const stopReason: StopReason = stop === 'max_tokens' || wanted > maxTokens ? 'max_tokens' : 'end_turn';
    const fillerChars = tokens * CHARS_PER_TOKEN - head.length - 1;
    if (fillerChars <= 0) return { text: head, outputTokens: tokens, stopReason };
    return {
      text: `${head} ${this.#fill(this.#draw(promptHash) >>> 4, fillerChars)}`,
      outputTokens: tokens,
      stopReason,
    };
  }

  #fill(start: number, chars: number): string {
    const filler = this.#filler;
    const offset = start % filler.length;
    if (offset + chars <= filler.length) return filler.slice(offset, offset + chars);
    let out = filler.slice(offset);
    while (out.length + filler.length < chars) out += filler;
    return out + filler.slice(0, chars - out.length);
  }
}
