/**
 * The signature of a failure, for the failure-storm breaker: two answers have the same signature
 * when they are the same error told about different requests. Status and type are kept; in the
 * message, ids (request, message and tool ids, UUIDs, long hex), quoted values and numbers are
 * masked, but field paths (`messages.3.content`, `max_tokens`, `tools.0.input_schema`) are kept as
 * they are, so genuinely bad lines whose messages name different fields never look alike.
 */
export interface SignatureInput {
  status: number | null;
  type: string;
  message: string;
}

/** A dotted path of identifiers and indices, as the API names a field: `messages.3.content.0.text`. */
const FIELD_PATH = /\b[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\d+))+\b/g;
/** Ids the API and SDK mint: `req_011C…`, `msg_…`, `toolu_…`, `msgbatch_…`, UUIDs, long hex. */
const IDS =
  /\b(?:[a-z]{2,12}_[A-Za-z0-9]{8,})\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{16,}\b/gi;
const QUOTED = /"[^"]*"|'[^']*'|`[^`]*`/g;
const NUMBERS = /\d+(?:\.\d+)?/g;

/** Masks what varies between requests; keeps field paths. Bounded: long messages are cut. */
export function maskMessage(message: string): string {
  // Quoted values first: a quoted value is a value even when it looks like a path.
  const text = message.slice(0, 2_000).replace(QUOTED, '<v>');
  const mask = (part: string) => part.replace(IDS, '<id>').replace(NUMBERS, '#');
  let out = '';
  let last = 0;
  for (const match of text.matchAll(FIELD_PATH)) {
    out += mask(text.slice(last, match.index)) + match[0];
    last = match.index + match[0].length;
  }
  return (out + mask(text.slice(last))).trim();
}

export function failureSignature(failure: SignatureInput): string {
  return `${failure.status ?? 'none'} ${failure.type} ${maskMessage(failure.message)}`;
}
