import { describe, expect, it } from 'vitest';
import { parseMarkers } from '../../../src/emulator/markers.js';

describe('parseMarkers', () => {
  it('reads fault markers with and without k and retry-after', () => {
    expect(parseMarkers(['x @@fault:api_error@@ y']).fault).toEqual({
      type: 'api_error',
      failFirst: null,
      retryAfterSeconds: null,
    });
    expect(parseMarkers(['@@fault:overloaded_error:3@@']).fault).toEqual({
      type: 'overloaded_error',
      failFirst: 3,
      retryAfterSeconds: null,
    });
    expect(parseMarkers(['@@fault:rate_limit_error:2:9@@']).fault).toEqual({
      type: 'rate_limit_error',
      failFirst: 2,
      retryAfterSeconds: 9,
    });
    expect(parseMarkers(['@@fault:connection_reset@@']).fault?.type).toBe('connection_reset');
    expect(parseMarkers(['@@fault:hang@@']).fault?.type).toBe('hang');
    expect(parseMarkers(['@@fault:ramp_limit_exceeded@@']).fault?.type).toBe('ramp_limit_exceeded');
    expect(parseMarkers(['@@fault:html_503@@']).fault?.type).toBe('html_503');
  });

  it('reads stream faults: type, deltas before it, and optionally the first k attempts', () => {
    expect(parseMarkers(['@@stream_fault:overloaded_error:3@@']).streamFault).toEqual({
      type: 'overloaded_error',
      afterDeltas: 3,
      failFirst: null,
    });
    expect(parseMarkers(['@@stream_fault:connection_reset:0:2@@']).streamFault).toEqual({
      type: 'connection_reset',
      afterDeltas: 0,
      failFirst: 2,
    });
    // Only faults a started stream can meet: not a hang, not an edge page; the deltas are required.
    expect(parseMarkers(['@@stream_fault:hang:1@@']).streamFault).toBeNull();
    expect(parseMarkers(['@@stream_fault:html_502:1@@']).streamFault).toBeNull();
    expect(parseMarkers(['@@stream_fault:api_error@@']).streamFault).toBeNull();
  });

  it('reads stop and length markers', () => {
    expect(parseMarkers(['@@stop:max_tokens@@'])).toMatchObject({ stop: 'max_tokens' });
    expect(parseMarkers(['@@stop:refusal@@'])).toMatchObject({ stop: 'refusal' });
    expect(parseMarkers(['@@output_tokens:42@@'])).toMatchObject({ outputTokens: 42 });
  });

  it('ignores what does not parse, and the first marker of each kind wins', () => {
    const none = { fault: null, streamFault: null, stop: null, outputTokens: null };
    expect(parseMarkers(['@@fault:gremlins@@'])).toEqual(none);
    expect(parseMarkers(['@@fault:api_error:0@@'])).toEqual(none);
    expect(parseMarkers(['@@fault:api_error:x@@'])).toEqual(none);
    expect(parseMarkers(['@@stop:end_turn@@'])).toEqual(none);
    expect(parseMarkers(['email@@example'])).toEqual(none);
    const both = parseMarkers(['@@fault:api_error@@', '@@fault:conflict_error@@ @@stop:refusal@@']);
    expect(both.fault?.type).toBe('api_error');
    expect(both.stop).toBe('refusal');
    // A stray "@@" before a marker does not hide it.
    expect(parseMarkers(['a @@ b @@fault:timeout_error@@']).fault?.type).toBe('timeout_error');
  });
});
