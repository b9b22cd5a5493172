/**
 * Helpers that put user-supplied values into error messages safely: short, on one line, and with
 * nothing a terminal would act on (control, bidi and zero-width characters are shown escaped).
 */

/** Longest quoted value (in code points) an error reason shows before cutting it with `…`. */
const MAX_QUOTED_CHARS = 40;

// C0/C1 controls, zero-width and bidi controls, line/paragraph separators, the BOM, lone surrogates.
const UNSAFE_CHARS =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point.
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * A string as a double-quoted, escaped literal of at most {@link MAX_QUOTED_CHARS} code points.
 * Only the head of a long value is looked at, so quoting a 30 MB prompt is as cheap as a short one.
 */
export function quote(value: string, maxChars = MAX_QUOTED_CHARS): string {
  // Two code units per code point at most, plus one so a cut is detectable.
  const head = value.length > maxChars * 2 + 1 ? value.slice(0, maxChars * 2 + 1) : value;
  const points = Array.from(head);
  const cut = points.length > maxChars || head.length < value.length;
  let shown = points.slice(0, maxChars).join('');
  // A slice can end between the halves of a pair; drop the half rather than show it as a lone surrogate.
  if (cut && /[\ud800-\udbff]$/.test(shown)) shown = shown.slice(0, -1);
  const escaped = shown.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(UNSAFE_CHARS, escapeChar);
  return `"${escaped}${cut ? '…' : ''}"`;
}

/** Text from elsewhere (an engine message) made safe to print: unsafe characters escaped, length capped. */
export function sanitize(text: string, maxChars = 120): string {
  const short = text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  return short.replace(UNSAFE_CHARS, escapeChar);
}

/** The JSON type of a parsed value, as a reason names it: `null`, `array`, `object`, `string`, ... */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** A parsed value described for a reason: its type and, for scalars, the (shortened) value itself. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `string ${quote(value)}`;
    case 'number':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    default:
      if (Array.isArray(value)) return `array of ${value.length}`;
      return jsonType(value);
  }
}

/** A plain identifier can be shown bare in a field path; anything else is shown quoted in brackets. */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;

/** Appends an object key to a field path: `params` + `model` → `params.model`, odd keys → `params["a b"]`. */
export function fieldPath(parent: string, key: string): string {
  if (PLAIN_KEY.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${quote(key)}]`;
}

/** Bytes as a short human figure: `512 B`, `1.5 KiB`, `32.0 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
