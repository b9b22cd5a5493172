import { describe, expect, it } from 'vitest';
import {
  InputChangedError,
  InputError,
  STDIN_NAME,
  formatErrorSummary,
} from '../../../src/batch/input-error.js';

describe('InputError', () => {
  it('formats as FILE:LINE: field: reason', () => {
    const error = new InputError('data/prompts.jsonl', 12, 'params.max_tokens', 'missing');
    expect(error.format()).toBe('data/prompts.jsonl:12: params.max_tokens: missing');
    expect(String(error)).toBe(error.format());
  });

  it('names stdin <stdin>', () => {
    expect(new InputError(STDIN_NAME, 1, 'json', 'blank line').format()).toBe('<stdin>:1: json: blank line');
  });

  it('serialises to its four fields', () => {
    expect(JSON.parse(JSON.stringify(new InputError('f', 2, 'custom_id', 'r')))).toEqual({
      file: 'f',
      line: 2,
      field: 'custom_id',
      reason: 'r',
    });
  });
});

describe('formatErrorSummary', () => {
  it('says how many lines are invalid when all errors are shown', () => {
    expect(formatErrorSummary('p.jsonl', { invalidLines: 1, errorCount: 1, shown: 1 })).toBe(
      '1 invalid line in p.jsonl',
    );
    expect(formatErrorSummary('p.jsonl', { invalidLines: 2, errorCount: 3, shown: 3 })).toBe(
      '2 invalid lines (3 errors) in p.jsonl',
    );
  });

  it('says how to see all errors when some are hidden', () => {
    expect(formatErrorSummary('p.jsonl', { invalidLines: 1204, errorCount: 1204, shown: 20 })).toBe(
      '1204 invalid lines in p.jsonl (showing the first 20; --max-errors 0 shows all)',
    );
  });
});

describe('InputChangedError', () => {
  it('names the file and what changed', () => {
    const error = new InputChangedError('p.jsonl', 'its content fingerprint differs');
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe(
      'p.jsonl changed after it was validated (its content fingerprint differs); run the command again',
    );
  });
});
