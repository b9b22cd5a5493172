import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH } from '../../../src/batch/canonical-json.js';
import {
  MAX_ERRORS_PER_LINE,
  isBlankLine,
  validateDefaults,
  validateLine,
  type FieldError,
  type RequestDefaults,
} from '../../../src/batch/validate-request.js';
import { fullLine } from './helpers.js';

const defaults: RequestDefaults = { model: 'claude-default', maxTokens: 256 };

function errorsOf(text: string, lineDefaults: RequestDefaults = defaults, lineNo = 3): FieldError[] {
  const result = validateLine(text, lineNo, lineDefaults);
  if (result.ok) throw new Error(`expected errors for ${text}`);
  return result.errors;
}

function fieldsOf(text: string, lineDefaults?: RequestDefaults): string[] {
  return errorsOf(text, lineDefaults).map((e) => e.field);
}

/** A full-format line with its params changed: `undefined` values remove the field. */
function withParams(change: Record<string, unknown>): string {
  const params: Record<string, unknown> = {
    model: 'm',
    max_tokens: 10,
    messages: [{ role: 'user', content: 'hi' }],
  };
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) delete params[key];
    else params[key] = value;
  }
  return JSON.stringify({ custom_id: 'r1', params });
}

describe('validateLine: accepted lines', () => {
  it('accepts a full-format line as is, with its body size and canonical form', () => {
    const text = fullLine('req-1', { temperature: 0.2, metadata: { user_id: 'u' } });
    const result = validateLine(text, 1, defaults);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const parsed = JSON.parse(text) as { params: unknown };
    expect(result.request).toEqual(parsed);
    expect(result.bytes).toBe(Buffer.byteLength(JSON.stringify(parsed.params)));
    expect(JSON.parse(result.canonical)).toEqual(parsed);
  });

  it('expands a shorthand line with the defaults, system included when given', () => {
    const result = validateLine(JSON.stringify({ custom_id: 'a', prompt: 'Summarise X' }), 1, {
      ...defaults,
      system: 'Be brief.',
    });
    expect(result).toMatchObject({
      ok: true,
      request: {
        custom_id: 'a',
        params: {
          model: 'claude-default',
          max_tokens: 256,
          system: 'Be brief.',
          messages: [{ role: 'user', content: 'Summarise X' }],
        },
      },
    });
    if (result.ok)
      expect(Object.keys(result.request.params)).toEqual(['model', 'max_tokens', 'system', 'messages']);
  });

  it('leaves system out of a shorthand line when the default is absent or empty', () => {
    for (const system of [undefined, '']) {
      const result = validateLine('{"custom_id":"a","prompt":"p"}', 1, { ...defaults, system });
      expect(result.ok && 'system' in result.request.params).toBe(false);
    }
  });

  it('never lets defaults override or fill a full-format line', () => {
    const text = fullLine('a', { system: 'own system' });
    const result = validateLine(text, 1, { model: 'other', maxTokens: 9999, system: 'default system' });
    expect(result.ok && result.request).toEqual(JSON.parse(text));

    const missing = withParams({ model: undefined, max_tokens: undefined });
    expect(fieldsOf(missing, { model: 'other', maxTokens: 5 })).toEqual([
      'params.model',
      'params.max_tokens',
    ]);
  });

  it('passes unknown params through for the API to judge', () => {
    const result = validateLine(withParams({ temperature: 'hot', frobnicate: [1, 2] }), 1, defaults);
    expect(result.ok && result.request.params).toMatchObject({ temperature: 'hot', frobnicate: [1, 2] });
  });

  it('accepts stream: false, system blocks and content blocks', () => {
    const text = withParams({
      stream: false,
      system: [{ type: 'text', text: 's' }],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'image', source: {} },
          ],
        },
        { role: 'assistant', content: 'b' },
      ],
    });
    expect(validateLine(text, 1, defaults).ok).toBe(true);
  });

  it('drops a BOM on line 1 and a trailing CR', () => {
    expect(validateLine(`\ufeff${fullLine('a')}\r`, 1, defaults).ok).toBe(true);
    expect(fieldsOf(`\ufeff${fullLine('a')}`)).toEqual(['json']);
  });

  it('gives the same canonical form whatever the key order or shorthand', () => {
    const short = validateLine('{"prompt":"hi","custom_id":"a"}', 1, { model: 'm', maxTokens: 10 });
    const full = validateLine(
      '{"params":{"messages":[{"content":"hi","role":"user"}],"max_tokens":10,"model":"m"},"custom_id":"a"}',
      1,
      {},
    );
    expect(short.ok && full.ok && short.canonical === full.canonical).toBe(true);
  });
});

describe('validateLine: line-level errors', () => {
  it.each([
    ['{"custom_id": "a",', 'json', /^not valid JSON: /],
    ['{"custom_id": x}', 'json', /^not valid JSON: unexpected character "x"$/],
    ['[1, 2]', 'json', /^expected an object like .*, got array of 2$/],
    ['"just a string"', 'json', /got string "just a string"$/],
    ['null', 'json', /got null$/],
    ['   ', 'json', /^blank line$/],
    ['{"custom_id":"a\u0000b"}', 'encoding', /^contains a NUL byte \(at character 16\)$/],
  ])('%j is an error at %s', (text, field, reason) => {
    const errors = errorsOf(text);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.field).toBe(field);
    expect(errors[0]?.reason).toMatch(reason);
  });

  it('turns JSON.parse positions into 1-based characters and never echoes the line', () => {
    const [error] = errorsOf(`{"custom_id": "${'z'.repeat(500)}" "params": 1}`);
    expect(error?.reason).toBe("not valid JSON: expected ',' or '}' after property value at character 518");
    const [token] = errorsOf(`${'q'.repeat(500)}`);
    expect(token?.reason).toBe('not valid JSON: unexpected character "q"');
  });

  it.each([
    ['param', 'param', 'unknown field; did you mean params?'],
    ['customId', 'customId', 'unknown field; did you mean custom_id?'],
    ['Prompt', 'Prompt', 'unknown field; did you mean prompt?'],
    ['model', 'model', 'unknown field; model goes inside params'],
    ['extra', 'extra', 'unknown field; a line has custom_id and either params or prompt'],
    ['two words', '["two words"]', 'unknown field; a line has custom_id and either params or prompt'],
  ])('reports the unknown top-level key %j as field %s', (key, field, reason) => {
    const line = JSON.parse(fullLine('a')) as Record<string, unknown>;
    line[key] = 1;
    expect(errorsOf(JSON.stringify(line))).toEqual([{ field, reason }]);
  });

  it('refuses a line with both prompt and params', () => {
    const text = JSON.stringify({ ...(JSON.parse(fullLine('a')) as object), prompt: 'p' });
    expect(errorsOf(text)).toEqual([
      { field: 'prompt', reason: 'a line takes either prompt (shorthand) or params, not both' },
    ]);
  });

  it('refuses a line with neither prompt nor params', () => {
    expect(errorsOf('{"custom_id":"a"}')).toEqual([
      { field: 'params', reason: 'missing: give params, or prompt to use the default model and max_tokens' },
    ]);
  });

  it('caps the errors of one line and counts the rest', () => {
    const messages = Array.from({ length: 30 }, () => ({ role: 'robot' }));
    const errors = errorsOf(withParams({ messages }));
    expect(errors).toHaveLength(MAX_ERRORS_PER_LINE + 1);
    expect(errors.at(-1)).toEqual({ field: 'line', reason: 'and 50 more errors on this line' });
  });
});

describe('validateLine: custom_id', () => {
  it.each([
    [undefined, 'missing: every line needs a custom_id'],
    [42, 'must be a string, got number 42'],
    ['', 'must not be empty'],
    ['x'.repeat(65), 'is 65 characters long; at most 64 allowed'],
    ['a b', '"a b" may only contain A-Z a-z 0-9 _ - (" " at character 2)'],
    ['id/1', '"id/1" may only contain A-Z a-z 0-9 _ - ("/" at character 3)'],
    ['émoji🙂', '"émoji🙂" may only contain A-Z a-z 0-9 _ - ("é" at character 1)'],
    ['rtl\u202eabc', '"rtl\\u202eabc" may only contain A-Z a-z 0-9 _ - ("\\u202e" at character 4)'],
    ['lone\ud800', '"lone\\ud800" may only contain A-Z a-z 0-9 _ - ("\\ud800" at character 5)'],
  ])('rejects custom_id %j', (customId, reason) => {
    const line = JSON.parse(fullLine('a')) as Record<string, unknown>;
    line.custom_id = customId;
    expect(errorsOf(JSON.stringify(line))).toEqual([{ field: 'custom_id', reason }]);
  });

  it('accepts 64 characters of the allowed alphabet', () => {
    expect(validateLine(fullLine(`${'A-z_9'.repeat(12)}abcd`), 1, defaults).ok).toBe(true);
  });

  it('returns the custom_id of an otherwise invalid line, for duplicate detection', () => {
    const result = validateLine(withParams({ max_tokens: 0 }), 1, defaults);
    expect(result).toMatchObject({ ok: false, customId: 'r1' });
  });
});

describe('validateLine: params', () => {
  it.each<[string, Record<string, unknown>, string, string]>([
    ['params not an object', { __replace: 'x' }, 'params', 'must be an object, got string "x"'],
    ['params an array', { __replace: [] }, 'params', 'must be an object, got array of 0'],
    ['model missing', { model: undefined }, 'params.model', 'missing'],
    ['model a number', { model: 3 }, 'params.model', 'must be a string, got number 3'],
    ['model empty', { model: ' ' }, 'params.model', 'must not be empty'],
    ['max_tokens missing', { max_tokens: undefined }, 'params.max_tokens', 'missing'],
    ['max_tokens zero', { max_tokens: 0 }, 'params.max_tokens', 'must be a positive integer, got number 0'],
    [
      'max_tokens negative',
      { max_tokens: -5 },
      'params.max_tokens',
      'must be a positive integer, got number -5',
    ],
    [
      'max_tokens fractional',
      { max_tokens: 1.5 },
      'params.max_tokens',
      'must be a positive integer, got number 1.5',
    ],
    [
      'max_tokens a string',
      { max_tokens: '10' },
      'params.max_tokens',
      'must be a positive integer, got string "10"',
    ],
    ['messages missing', { messages: undefined }, 'params.messages', 'missing'],
    ['messages an object', { messages: {} }, 'params.messages', 'must be an array of messages, got object'],
    ['messages empty', { messages: [] }, 'params.messages', 'must not be empty'],
    [
      'a message not an object',
      { messages: ['hi'] },
      'params.messages[0]',
      'must be an object with role and content, got string "hi"',
    ],
    ['role missing', { messages: [{ content: 'x' }] }, 'params.messages[0].role', 'missing'],
    [
      'role system',
      { messages: [{ role: 'system', content: 'x' }] },
      'params.messages[0].role',
      'must be "user" or "assistant", got string "system"',
    ],
    ['content missing', { messages: [{ role: 'user' }] }, 'params.messages[0].content', 'missing'],
    [
      'content a number',
      {
        messages: [
          { role: 'user', content: 'ok' },
          { role: 'assistant', content: 7 },
        ],
      },
      'params.messages[1].content',
      'must be a string or an array of content blocks, got number 7',
    ],
    [
      'content block a string',
      { messages: [{ role: 'user', content: ['hi'] }] },
      'params.messages[0].content[0]',
      'must be a content block object, got string "hi"',
    ],
    [
      'content block without type',
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { text: 'b' }] }] },
      'params.messages[0].content[1].type',
      'missing',
    ],
    [
      'content block type a number',
      { messages: [{ role: 'user', content: [{ type: 1 }] }] },
      'params.messages[0].content[0].type',
      'must be a string, got number 1',
    ],
    [
      'system a number',
      { system: 5 },
      'params.system',
      'must be a string or an array of content blocks, got number 5',
    ],
    [
      'system block not an object',
      { system: [null] },
      'params.system[0]',
      'must be a content block object, got null',
    ],
    ['system block without type', { system: [{ text: 's' }] }, 'params.system[0].type', 'missing'],
    [
      'stream true',
      { stream: true },
      'params.stream',
      'true is not supported: the runner makes the call itself; remove it',
    ],
  ])('%s', (_name, change, field, reason) => {
    const text =
      '__replace' in change
        ? JSON.stringify({ custom_id: 'r1', params: change.__replace })
        : withParams(change);
    expect(errorsOf(text)).toEqual([{ field, reason }]);
  });

  it('reports every problem of a line, in field order', () => {
    const text = JSON.stringify({ custom_id: 'bad id', params: { model: '', messages: [{ role: 'x' }] } });
    expect(fieldsOf(text)).toEqual([
      'custom_id',
      'params.model',
      'params.max_tokens',
      'params.messages[0].role',
      'params.messages[0].content',
    ]);
  });

  it('rejects a request whose serialised body is over the limit, and accepts one at it', () => {
    const small = withParams({});
    const ok = validateLine(small, 1, defaults);
    if (!ok.ok) throw new Error('expected ok');
    expect(validateLine(small, 1, defaults, { maxBodyBytes: ok.bytes }).ok).toBe(true);
    expect(validateLine(small, 1, defaults, { maxBodyBytes: ok.bytes - 1 })).toEqual({
      ok: false,
      customId: 'r1',
      errors: [
        {
          field: 'params',
          reason: `request body would be ${ok.bytes} B (${ok.bytes} bytes), over the API's limit of ${ok.bytes - 1} bytes`,
        },
      ],
    });
  });

  it('counts the body in UTF-8 bytes, not characters', () => {
    const ascii = validateLine(withParams({ messages: [{ role: 'user', content: 'aaaa' }] }), 1, defaults);
    const emoji = validateLine(withParams({ messages: [{ role: 'user', content: '🙂🙂' }] }), 1, defaults);
    expect(ascii.ok && emoji.ok && emoji.bytes - ascii.bytes).toBe(4);
  });

  it('refuses params nested deeper than MAX_NESTING_DEPTH, at any depth, without throwing', () => {
    const nested = (depth: number): string =>
      `{"custom_id":"a","params":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    // params itself is one level; x adds the rest.
    expect(validateLine(nested(MAX_NESTING_DEPTH - 1), 1, defaults).ok).toBe(true);
    for (const depth of [MAX_NESTING_DEPTH, 200_000]) {
      expect(errorsOf(nested(depth))).toEqual([{ field: 'params', reason: 'nested deeper than 256 levels' }]);
    }
  });
});

describe('validateLine: shorthand', () => {
  it.each<[string, unknown, RequestDefaults, string, string]>([
    ['prompt a number', 5, defaults, 'prompt', 'must be a string, got number 5'],
    ['prompt empty', '', defaults, 'prompt', 'must not be empty'],
    ['prompt blank', ' \n ', defaults, 'prompt', 'must not be empty'],
    [
      'no default model',
      'p',
      { maxTokens: 5 },
      'params.model',
      'missing: a prompt line takes the model from --model, and none was given',
    ],
    [
      'no default max_tokens',
      'p',
      { model: 'm' },
      'params.max_tokens',
      'missing: a prompt line takes max_tokens from --max-tokens, and none was given',
    ],
    [
      'bad default max_tokens',
      'p',
      { model: 'm', maxTokens: 0 },
      'params.max_tokens',
      'the default (--max-tokens) must be a positive integer, got number 0',
    ],
  ])('%s', (_name, prompt, lineDefaults, field, reason) => {
    expect(errorsOf(JSON.stringify({ custom_id: 'a', prompt }), lineDefaults)).toEqual([{ field, reason }]);
  });

  it('rejects params keys beside a prompt as unknown fields', () => {
    expect(fieldsOf('{"custom_id":"a","prompt":"p","max_tokens":5}')).toEqual(['max_tokens']);
  });
});

describe('reasons stay short and safe', () => {
  it('truncates quoted values to 40 characters', () => {
    const [error] = errorsOf(
      withParams({ model: 1, messages: [{ role: 'x'.repeat(10_000), content: 'a' }] }),
    ).slice(1);
    expect(error?.reason).toBe(`must be "user" or "assistant", got string "${'x'.repeat(40)}…"`);
  });

  it('escapes control, bidi and zero-width characters', () => {
    const [error] = errorsOf(
      withParams({ model: 9, messages: [{ role: '\u202e\u200b\u0007\n"', content: 'a' }] }),
    ).slice(1);
    expect(error?.reason).toBe('must be "user" or "assistant", got string "\\u202e\\u200b\\u0007\\u000a\\""');
  });

  it('does not split an emoji when truncating', () => {
    const [error] = errorsOf(
      withParams({ model: 9, messages: [{ role: '🙂'.repeat(100), content: 'a' }] }),
    ).slice(1);
    expect(error?.reason).toBe(`must be "user" or "assistant", got string "${'🙂'.repeat(40)}…"`);
  });
});

describe('validateDefaults', () => {
  it('accepts absent and good defaults', () => {
    expect(validateDefaults({})).toEqual([]);
    expect(validateDefaults({ model: 'm', maxTokens: 1, system: '' })).toEqual([]);
  });

  it('names the flag of each bad default', () => {
    expect(validateDefaults({ model: '', maxTokens: 2.5 })).toEqual([
      { field: '--model', reason: 'must be a non-empty string, got string ""' },
      { field: '--max-tokens', reason: 'must be a positive integer, got number 2.5' },
    ]);
  });
});

describe('isBlankLine', () => {
  it('treats only JSON whitespace as blank', () => {
    expect(['', ' ', '\t \r'].every(isBlankLine)).toBe(true);
    expect(['x', '\u00a0', '\ufeff', ' {} '].some(isBlankLine)).toBe(false);
  });
});
