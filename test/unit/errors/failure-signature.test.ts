import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { failureSignature, maskMessage } from '../../../src/errors/failure-signature.js';

const sig = (message: string, status = 400, type = 'invalid_request_error') =>
  failureSignature({ status, type, message });

describe('failure signature: same error about different requests alike, different fields apart', () => {
  it('masks numbers, ids and quoted values', () => {
    expect(maskMessage('max_tokens: 100000 > 64000, which is the maximum allowed for claude-x')).toBe(
      'max_tokens: # > #, which is the maximum allowed for claude-x',
    );
    expect(sig('Request req_011CSHoEeqs5C35K2UUqR7Fy failed')).toBe(sig('Request req_0999ABCDEFGHIJ failed'));
    expect(sig('model "foo-1" is not allowed')).toBe(sig("model 'bar-22' is not allowed"));
    expect(sig('id 123e4567-e89b-12d3-a456-426614174000 unknown')).toBe(
      sig('id 9b2c4567-e89b-12d3-a456-426614174999 unknown'),
    );
  });

  it('keeps field paths, indices included', () => {
    expect(sig('messages.3.content: Field required')).not.toBe(sig('max_tokens: Field required'));
    expect(sig('messages.3.content: Field required')).not.toBe(sig('messages.5.content: Field required'));
    expect(sig('messages.0.content.2.cache_control.ttl: Input should be 5m or 1h')).toBe(
      sig('messages.0.content.2.cache_control.ttl: Input should be 5m or 1h'),
    );
  });

  it('status and type are part of it', () => {
    expect(sig('x', 400)).not.toBe(sig('x', 403));
    expect(sig('x', 400, 'a')).not.toBe(sig('x', 400, 'b'));
  });

  it('is the same for any numbers and quoted values in one template', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.nat(),
        fc.string().filter((s) => !s.includes('"')),
        (a, b, v) => {
          expect(sig(`budget ${a} exceeded by ${b} for "${v}"`)).toBe(sig('budget 1 exceeded by 2 for "x"'));
        },
      ),
    );
  });
});
