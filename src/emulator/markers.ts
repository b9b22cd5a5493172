/**
 * Per-prompt markers: text placed anywhere in a request's prompt (system or message text, or inside a
 * non-text block such as a tool_result) that steers what the emulator does with that request, so a
 * test can aim a fault at one job of a batch. Markers apply to `POST /v1/messages` only, after
 * authentication, validation, the spend cap and credits; a marker fault takes the place of the fault
 * plan for that request (a scripted sequence does not advance).
 *
 * Grammar (markers that do not parse are ordinary text):
 *
 *   marker      = "@@" body "@@"
 *   body        = fault / stream-fault / stop / length
 *   fault       = "fault:" fault-type [ ":" k [ ":" retry-after ] ]
 *   stream-fault = "stream_fault:" mid-type ":" deltas [ ":" k ]
 *   stop        = "stop:" ( "max_tokens" / "refusal" )
 *   length      = "output_tokens:" n
 *   fault-type  = invalid_request_error / authentication_error / permission_error / billing_error
 *               / not_found_error / request_too_large / rate_limit_error / api_error
 *               / overloaded_error / timeout_error / conflict_error
 *               / error-code        ; organization_on_hold, ramp_limit_exceeded, ... (api-error.ts ERROR_CODES)
 *               / html_502 / html_503 / html_504 / empty_502 / empty_503 / empty_504 / html_413
 *               / connection_reset / hang / reset_mid_response
 *   mid-type    = an API error type / error-code / connection_reset
 *   deltas      = 1*DIGIT             ; >= 0
 *   k, n        = 1*DIGIT             ; k >= 1, n >= 1
 *   retry-after = 1*DIGIT             ; whole seconds >= 1
 *
 * - `@@fault:T@@` fails every attempt with T.
 * - `@@fault:T:k@@` fails the first k attempts of that request content (attempts are counted per prompt
 *   hash, see the request log), then lets it through.
 * - `@@fault:rate_limit_error:k:s@@` also sets `retry-after` to s seconds (default 1); for "every attempt,
 *   with retry-after s", give a k larger than any retry budget.
 * - `@@stream_fault:T:d@@`: a streamed request (`stream: true`) sends d text deltas, then an
 *   `event: error` with T's body (or resets, for connection_reset); `@@stream_fault:T:d:k@@` does so
 *   on the first k attempts only. Requests that are not streamed ignore it.
 * - `@@stop:max_tokens@@` cuts the reply at max_tokens (stop_reason `max_tokens`);
 *   `@@stop:refusal@@` answers with stop_reason `refusal`.
 * - `@@output_tokens:n@@` makes the reply n output tokens long (before the max_tokens cap).
 * The first marker of each kind wins.
 */
import { isFaultType, isMidStreamFault, type FaultType, type MidStreamFault } from './fault-plan.js';

interface FaultMarker {
  type: FaultType;
  /** Fail attempts 1..failFirst; null: fail every attempt. */
  failFirst: number | null;
  /** Whole seconds; null: the plan's default. */
  retryAfterSeconds: number | null;
}

interface StreamFaultMarker {
  type: MidStreamFault;
  afterDeltas: number;
  /** Fail attempts 1..failFirst; null: fail every attempt. */
  failFirst: number | null;
}

export interface Markers {
  fault: FaultMarker | null;
  streamFault: StreamFaultMarker | null;
  stop: 'max_tokens' | 'refusal' | null;
  outputTokens: number | null;
}

const DIGITS = /^[0-9]{1,9}$/;

function positiveInt(text: string | undefined): number | null {
  if (text === undefined || !DIGITS.test(text)) return null;
  const n = Number(text);
  return n >= 1 ? n : null;
}

/** Reads every marker in the texts; callers pass only texts that contain "@@". */
export function parseMarkers(texts: readonly string[]): Markers {
  const found: Markers = { fault: null, streamFault: null, stop: null, outputTokens: null };
  for (const text of texts) {
    let from = 0;
    for (;;) {
      const open = text.indexOf('@@', from);
      if (open < 0) break;
      const close = text.indexOf('@@', open + 2);
      if (close < 0) break;
      if (applyMarker(text.slice(open + 2, close), found)) {
        from = close + 2;
      } else {
        // The closing "@@" may open the next marker: "@@ not a marker @@fault:api_error@@".
        from = close;
      }
    }
  }
  return found;
}

function applyMarker(body: string, found: Markers): boolean {
  const parts = body.split(':');
  const [kind, arg, third, fourth] = parts;
  if (kind === 'fault' && parts.length >= 2 && parts.length <= 4 && isFaultType(arg)) {
    const failFirst = third === undefined ? null : positiveInt(third);
    const retryAfter = fourth === undefined ? null : positiveInt(fourth);
    if ((third !== undefined && failFirst === null) || (fourth !== undefined && retryAfter === null))
      return false;
    found.fault ??= { type: arg, failFirst, retryAfterSeconds: retryAfter };
    return true;
  }
  if (kind === 'stream_fault' && (parts.length === 3 || parts.length === 4) && isMidStreamFault(arg)) {
    const afterDeltas = third !== undefined && DIGITS.test(third) ? Number(third) : null;
    const failFirst = fourth === undefined ? null : positiveInt(fourth);
    if (afterDeltas === null || (fourth !== undefined && failFirst === null)) return false;
    found.streamFault ??= { type: arg, afterDeltas, failFirst };
    return true;
  }
  if (kind === 'stop' && parts.length === 2 && (arg === 'max_tokens' || arg === 'refusal')) {
    found.stop ??= arg;
    return true;
  }
  if (kind === 'output_tokens' && parts.length === 2) {
    const n = positiveInt(arg);
    if (n === null) return false;
    found.outputTokens ??= n;
    return true;
  }
  return false;
}
