import { APIConnectionError, APIConnectionTimeoutError, APIError } from '@anthropic-ai/sdk';

/**
 * A failed API call reduced to what classification and the dead-letter entry need. Built once
 * from whatever the SDK threw, so no other module inspects SDK error classes (they differ
 * between SDK versions; status and body `.type` do not).
 */
export interface ApiFailure {
  /** HTTP status, or null when no response arrived (connection reset, timeout). */
  status: number | null;
  /** The body's `error.type`, or null when the body had none (a bare 413 from the edge, a reset). */
  type: string | null;
  /** The body's `error.details.error_code` (e.g. `enforced_spend_limit_reached`), when present. */
  errorCode: string | null;
  message: string;
  requestId: string | null;
  /** Response headers, lower-cased names. Empty when no response arrived. */
  headers: Record<string, string>;
  /** How the call failed before any status arrived. */
  transport: 'timeout' | 'connection' | null;
  /**
   * True when the request certainly never reached the API (the connection was refused, the host
   * name did not resolve): trying again cannot pay twice. False whenever it may have been sent.
   */
  neverSent?: boolean;
  /**
   * True when the request was sent and no complete answer came back (a timeout, a connection cut,
   * an error event in the middle of a stream): the API may have processed and billed it, and
   * nothing deduplicates a repeated request, so sending it again may pay twice.
   */
  maybeBilled?: boolean;
}

/** Socket errors before a connection existed: nothing was sent. */
const NEVER_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Longest message kept from a body that is not the API's (an HTML page from a proxy). */
const SUMMARY_CHARS = 300;

/** The error type reported for failures that carry none (no response, or a body without `.type`). */
export function effectiveType(failure: ApiFailure): string {
  if (failure.type) return failure.type;
  if (failure.transport === 'timeout') return 'timeout_error';
  if (failure.transport === 'connection') return 'connection_error';
  return failure.status === null ? 'connection_error' : `http_${failure.status}`;
}

export function toApiFailure(err: unknown): ApiFailure {
  if (err instanceof APIConnectionTimeoutError || err instanceof APIConnectionError) {
    const code = err instanceof APIConnectionTimeoutError ? undefined : causeCode(err);
    return {
      status: null,
      type: null,
      errorCode: null,
      message:
        err instanceof APIConnectionTimeoutError
          ? 'Request timed out.'
          : code
            ? `Connection error (${code}).`
            : 'Connection error.',
      requestId: null,
      headers: {},
      transport: err instanceof APIConnectionTimeoutError ? 'timeout' : 'connection',
      neverSent: code !== undefined && NEVER_SENT_CODES.has(code),
      maybeBilled: code === undefined || !NEVER_SENT_CODES.has(code),
    };
  }
  if (err instanceof APIError) {
    const body = asRecord(err.error);
    const inner = asRecord(body?.['error']);
    const details = asRecord(inner?.['details']);
    return {
      status: typeof err.status === 'number' ? err.status : null,
      type: stringOrNull(inner?.['type']),
      errorCode: stringOrNull(details?.['error_code']),
      message: stringOrNull(inner?.['message']) ?? summarizeForeignBody(err.status, err.message),
      requestId: err.requestID ?? null,
      headers: headersToRecord(err.headers),
      transport: null,
    };
  }
  // Anything else is a fault below the SDK (a socket error it did not wrap, such as a connection
  // cut while the body was read: undici's "terminated"): treat as a connection failure so it is
  // retried rather than lost. The request was sent: it may have been processed.
  const detail = err instanceof Error ? (causeCode(err) ?? err.message) : String(err);
  return {
    status: null,
    type: null,
    errorCode: null,
    message: `Connection error while reading the response (${detail}).`,
    maybeBilled: true,
    requestId: null,
    headers: {},
    transport: 'connection',
  };
}

export function headersToRecord(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers && typeof (headers as Headers).forEach === 'function') {
    (headers as Headers).forEach((value, name) => {
      out[name.toLowerCase()] = value;
    });
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value === 'string') out[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** The socket error code under a connection error (fetch nests it: error → cause → cause). */
function causeCode(err: Error): string | undefined {
  let cause: unknown = (err as { cause?: unknown }).cause;
  for (let depth = 0; depth < 4 && cause && typeof cause === 'object'; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A short, readable message for an answer whose body is not the API's error: an HTML page or an
 * empty body from a proxy or the edge. The SDK's message is the status followed by the whole body.
 */
function summarizeForeignBody(status: unknown, sdkMessage: string): string {
  const prefix = typeof status === 'number' ? `${status} ` : '';
  const body = sdkMessage.startsWith(prefix) ? sdkMessage.slice(prefix.length) : sdkMessage;
  const http = typeof status === 'number' ? `HTTP ${status}` : 'An answer';
  if (body.trim() === '' || body === 'status code (no body)') {
    return `${http} with an empty body (from a proxy or the edge, not the API).`;
  }
  if (/<(!doctype|html|head|body|title|h1|center)\b/i.test(body)) {
    const title =
      /<title[^>]*>([\s\S]*?)<\/title>/i.exec(body)?.[1] ?? /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(body)?.[1];
    const text = (title ?? body.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
    return `${http} with an HTML page (from a proxy or the edge, not the API): ${clip(text)}`;
  }
  return clip(sdkMessage.replace(/\s+/g, ' ').trim());
}

function clip(text: string): string {
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}
