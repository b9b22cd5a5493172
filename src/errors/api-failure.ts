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
}

/** The error type reported for failures that carry none (no response, or a body without `.type`). */
export function effectiveType(failure: ApiFailure): string {
  if (failure.type) return failure.type;
  if (failure.transport === 'timeout') return 'timeout_error';
  if (failure.transport === 'connection') return 'connection_error';
  return failure.status === null ? 'connection_error' : `http_${failure.status}`;
}

export function toApiFailure(err: unknown): ApiFailure {
  if (err instanceof APIConnectionTimeoutError || err instanceof APIConnectionError) {
    return {
      status: null,
      type: null,
      errorCode: null,
      message: err instanceof APIConnectionTimeoutError ? 'Request timed out.' : connectionMessage(err),
      requestId: null,
      headers: {},
      transport: err instanceof APIConnectionTimeoutError ? 'timeout' : 'connection',
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
      message: stringOrNull(inner?.['message']) ?? err.message,
      requestId: err.requestID ?? null,
      headers: headersToRecord(err.headers),
      transport: null,
    };
  }
  // Anything else is a fault below the SDK (a socket error it did not wrap): treat as a
  // connection failure so it is retried rather than lost.
  return {
    status: null,
    type: null,
    errorCode: null,
    message: err instanceof Error ? err.message : String(err),
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

function connectionMessage(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' ? (cause as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? `Connection error (${code}).` : 'Connection error.';
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}
