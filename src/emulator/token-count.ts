/**
 * The emulator's token counting rule. It is a stand-in for the real tokenizer, simple enough that a
 * test can predict it, and deliberately kept inside src/emulator: the runner's own estimator must not
 * import it, or tests would check the estimator against itself.
 *
 * The input tokens of a request are the sum of:
 * - every text (a string `system`, a `text` block in `system` or in a message, a string message
 *   content): ceil(UTF-16 length / 4);
 * - every other content block (image, tool_use, tool_result, document, ...) and every tool definition:
 *   ceil(length of its JSON without `cache_control` / 4);
 * - MESSAGE_OVERHEAD_TOKENS (3) per message, for the role framing.
 * Each piece is rounded on its own, so the tokens of a cached prefix are exactly the sum of its pieces.
 * `count_tokens` returns this same sum. Output tokens are defined by the reply generator (replies.ts):
 * a reply of n output tokens has 4n characters of text (a reply cut very short still keeps its
 * fingerprint, so its text may be longer than 4n characters).
 */

export const CHARS_PER_TOKEN = 4;

/** Tokens added per message for the role framing. */
export const MESSAGE_OVERHEAD_TOKENS = 3;

export function textTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** Tokens of a non-text block or a tool definition, given its JSON without `cache_control`. */
export function jsonTokens(json: string): number {
  return Math.ceil(json.length / CHARS_PER_TOKEN);
}
