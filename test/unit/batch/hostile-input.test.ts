import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fieldPath } from '../../../src/batch/describe-value.js';
import { scanInput } from '../../../src/batch/scan-input.js';
import { memoryInput } from './helpers.js';

/**
 * A corpus of hostile lines, each built knowing whether it is valid and, where it is certain, which
 * field must be blamed. The scan must report exactly the malformed lines, at their line numbers.
 */

interface Built {
  bytes: Buffer;
  valid: boolean;
  /** One of these fields must be among the line's errors; omitted when any error will do. */
  fields?: string[];
}

interface Context {
  /** Ordinal of the line being built, for unique ids. */
  ordinal: number;
  /** Ids of the valid lines so far, for duplicates. */
  validIds: string[];
}

interface Case {
  label: string;
  build: (ctx: Context) => Built;
}

const DEFAULTS = { model: 'claude-default', maxTokens: 50 };

// Characters that have broken parsers and terminals: bidi overrides, zero-width joiners, BOMs,
// separators JavaScript once treated as line breaks, lone surrogates, and astral characters.
const EDGE_TEXT = [
  '\u202e',
  '\u202d',
  '\u2066',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u2028',
  '\u2029',
  '\u0000',
  '\u001b[31m',
  '\ud800',
  '\udfff',
  '\udbff\udfff',
  '🙂',
  '👨‍👩‍👧',
  '🇫🇷',
  'שלום',
  'مرحبا',
  'e\u0301',
  '"',
  '\\',
  '\\u0000',
];

const text = fc
  .array(fc.oneof(fc.constantFrom(...EDGE_TEXT), fc.string({ unit: 'binary', maxLength: 12 })), {
    maxLength: 6,
  })
  .map((parts) => parts.join(''));

const passThroughValue = fc.jsonValue({ maxDepth: 2 });

function validId(ctx: Context): string {
  return `v${ctx.ordinal}`;
}

function badId(ctx: Context): string {
  return `bad${ctx.ordinal}`;
}

function line(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function fullRequest(customId: string, content: string, extra: Record<string, unknown> = {}) {
  return {
    custom_id: customId,
    params: {
      model: 'claude-test',
      max_tokens: 32,
      messages: [{ role: 'user', content }],
      ...extra,
    },
  };
}

/** Inserts `bytes` before an ASCII byte, so the insertion never lands inside a multi-byte character. */
function insertAtBoundary(into: Buffer, bytes: readonly number[], pick: number): Buffer {
  const boundaries: number[] = [];
  for (let i = 0; i <= into.length; i++) if (i === into.length || (into[i] ?? 0) < 0x80) boundaries.push(i);
  const at = boundaries[pick % boundaries.length] ?? 0;
  return Buffer.concat([into.subarray(0, at), Buffer.from(bytes), into.subarray(at)]);
}

// --- valid lines -----------------------------------------------------------------------------------

const validFull: fc.Arbitrary<Case> = fc
  .record({ content: text, temperature: fc.option(passThroughValue) })
  .map(({ content, temperature }) => ({
    label: 'valid full line',
    build: (ctx) => ({
      bytes: line(fullRequest(validId(ctx), content, temperature === null ? {} : { temperature })),
      valid: true,
    }),
  }));

const validShorthand: fc.Arbitrary<Case> = text.map((prompt) => ({
  label: 'valid shorthand line',
  build: (ctx) => ({ bytes: line({ custom_id: validId(ctx), prompt: `Q${prompt}` }), valid: true }),
}));

const validBlocks: fc.Arbitrary<Case> = fc.tuple(text, text).map(([a, b]) => ({
  label: 'valid line with blocks',
  build: (ctx) => ({
    bytes: line(
      fullRequest(validId(ctx), '', {
        system: [{ type: 'text', text: a }],
        messages: [
          { role: 'user', content: [{ type: 'text', text: b }] },
          { role: 'assistant', content: a },
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', data: 'AAAA' } }] },
        ],
      }),
    ),
    valid: true,
  }),
}));

// --- malformed lines -------------------------------------------------------------------------------

const brokenJson: fc.Arbitrary<Case> = fc
  .tuple(text, fc.double({ min: 0, max: 1, noNaN: true }))
  .map(([content, cut]) => ({
    label: 'truncated JSON',
    build: (ctx) => {
      const whole = JSON.stringify(fullRequest(badId(ctx), content));
      const at = 1 + Math.floor(cut * (whole.length - 2));
      return { bytes: Buffer.from(whole.slice(0, at), 'utf8'), valid: false, fields: ['json'] };
    },
  }));

const garbage: fc.Arbitrary<Case> = fc.string({ unit: 'binary', maxLength: 60 }).map((junk) => ({
  label: 'garbage',
  build: () => ({
    // A leading # keeps it non-blank and not JSON; line breaks would split it into other lines.
    bytes: Buffer.from(`#${junk.replace(/[\r\n]/g, ' ')}`, 'utf8'),
    valid: false,
    fields: ['json', 'encoding'],
  }),
}));

const notAnObject: fc.Arbitrary<Case> = fc
  .constantFrom('[]', '[{"custom_id":"a"}]', '"text"', '42', 'null', 'true', '\ufeff{}')
  .map((json) => ({
    label: `not an object: ${json}`,
    build: () => ({ bytes: Buffer.from(json), valid: false, fields: ['json'] }),
  }));

/** Each mutation breaks one field of a valid request in one way; the field it must be reported at. */
const MUTATIONS: {
  field: string;
  apply: (r: Record<string, unknown>, p: Record<string, unknown>) => void;
}[] = [
  { field: 'custom_id', apply: (r) => (r.custom_id = 12) },
  { field: 'custom_id', apply: (r) => (r.custom_id = null) },
  { field: 'custom_id', apply: (r) => (r.custom_id = ['a']) },
  { field: 'custom_id', apply: (r) => delete r.custom_id },
  { field: 'params', apply: (r) => (r.params = 'params') },
  { field: 'params', apply: (r) => (r.params = [1]) },
  { field: 'params', apply: (r) => (r.params = null) },
  { field: 'params', apply: (r) => delete r.params },
  { field: 'params.model', apply: (_, p) => (p.model = 7) },
  { field: 'params.model', apply: (_, p) => (p.model = '') },
  { field: 'params.model', apply: (_, p) => delete p.model },
  { field: 'params.max_tokens', apply: (_, p) => (p.max_tokens = 0) },
  { field: 'params.max_tokens', apply: (_, p) => (p.max_tokens = -3) },
  { field: 'params.max_tokens', apply: (_, p) => (p.max_tokens = 2.5) },
  { field: 'params.max_tokens', apply: (_, p) => (p.max_tokens = '100') },
  { field: 'params.max_tokens', apply: (_, p) => (p.max_tokens = Infinity) },
  { field: 'params.max_tokens', apply: (_, p) => delete p.max_tokens },
  { field: 'params.messages', apply: (_, p) => (p.messages = []) },
  { field: 'params.messages', apply: (_, p) => (p.messages = { role: 'user' }) },
  { field: 'params.messages', apply: (_, p) => delete p.messages },
  { field: 'params.messages[0]', apply: (_, p) => (p.messages = ['hello']) },
  { field: 'params.messages[0].role', apply: (_, p) => (p.messages = [{ role: 'system', content: 'x' }]) },
  { field: 'params.messages[0].role', apply: (_, p) => (p.messages = [{ content: 'x' }]) },
  { field: 'params.messages[0].content', apply: (_, p) => (p.messages = [{ role: 'user' }]) },
  { field: 'params.messages[0].content', apply: (_, p) => (p.messages = [{ role: 'user', content: 3 }]) },
  {
    field: 'params.messages[0].content[0]',
    apply: (_, p) => (p.messages = [{ role: 'user', content: [7] }]),
  },
  {
    field: 'params.messages[0].content[0].type',
    apply: (_, p) => (p.messages = [{ role: 'user', content: [{ text: 'no type' }] }]),
  },
  { field: 'params.system', apply: (_, p) => (p.system = 5) },
  { field: 'params.system', apply: (_, p) => (p.system = { text: 's' }) },
  { field: 'params.system[0]', apply: (_, p) => (p.system = [null]) },
  { field: 'params.stream', apply: (_, p) => (p.stream = true) },
  { field: 'prompt', apply: (r) => (r.prompt = 'both') },
  { field: 'param', apply: (r) => (r.param = {}) },
  { field: 'customid', apply: (r) => (r.customid = 'x') },
];

const wrongField: fc.Arbitrary<Case> = fc
  .tuple(fc.nat({ max: MUTATIONS.length - 1 }), text)
  .map(([which, content]) => {
    const mutation = MUTATIONS[which] ?? MUTATIONS[0]!;
    return {
      label: `mutated ${mutation.field}`,
      build: (ctx) => {
        const request = fullRequest(badId(ctx), content) as unknown as Record<string, unknown>;
        mutation.apply(request, request.params as Record<string, unknown>);
        return { bytes: line(request), valid: false, fields: [mutation.field] };
      },
    };
  });

const badShorthand: fc.Arbitrary<Case> = fc
  .constantFrom<[unknown, string]>(
    [5, 'prompt'],
    ['', 'prompt'],
    ['  ', 'prompt'],
    [null, 'prompt'],
    [['a'], 'prompt'],
  )
  .map(([prompt, field]) => ({
    label: `bad prompt ${JSON.stringify(prompt)}`,
    build: (ctx) => ({ bytes: line({ custom_id: badId(ctx), prompt }), valid: false, fields: [field] }),
  }));

const hugeValue: fc.Arbitrary<Case> = fc
  .tuple(
    fc.integer({ min: 20_000, max: 200_000 }),
    fc.constantFrom('model', 'max_tokens', 'role', 'id', 'key'),
  )
  .map(([size, where]) => ({
    label: `huge ${where}`,
    build: (ctx) => {
      const huge = '\u202e'.repeat(3) + 'x'.repeat(size);
      const request = fullRequest(badId(ctx), 'hi') as unknown as Record<string, unknown>;
      const params = request.params as Record<string, unknown>;
      let field: string;
      if (where === 'model') {
        params.model = [huge];
        field = 'params.model';
      } else if (where === 'max_tokens') {
        params.max_tokens = huge;
        field = 'params.max_tokens';
      } else if (where === 'role') {
        params.messages = [{ role: huge, content: 'x' }];
        field = 'params.messages[0].role';
      } else if (where === 'id') {
        request.custom_id = huge;
        field = 'custom_id';
      } else {
        request[huge] = 1;
        field = fieldPath('', huge);
      }
      return { bytes: line(request), valid: false, fields: [field] };
    },
  }));

const ILLEGAL_IDS = [
  '',
  ' ',
  'a b',
  'a/b',
  'a.b',
  'x'.repeat(65),
  'ü',
  'id\u200b',
  '\u202eid',
  'id🙂',
  'id\ud800',
  'a\u0000b',
];

const illegalId: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(...ILLEGAL_IDS), fc.boolean())
  .map(([customId, shorthand]) => ({
    label: `illegal id ${JSON.stringify(customId)}`,
    build: () => ({
      bytes: line(shorthand ? { custom_id: customId, prompt: 'p' } : fullRequest(customId, 'p')),
      valid: false,
      fields: ['custom_id'],
    }),
  }));

const INVALID_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0x80],
  [0xe2, 0x82],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8],
];

const invalidUtf8: fc.Arbitrary<Case> = fc
  .tuple(text, fc.constantFrom(...INVALID_UTF8), fc.nat())
  .map(([content, bad, pick]) => ({
    label: `invalid UTF-8 ${Buffer.from(bad).toString('hex')}`,
    build: (ctx) => ({
      bytes: insertAtBoundary(line(fullRequest(badId(ctx), content)), bad, pick),
      valid: false,
      fields: ['encoding'],
    }),
  }));

const nulByte: fc.Arbitrary<Case> = fc.tuple(text, fc.nat()).map(([content, pick]) => ({
  label: 'raw NUL byte',
  build: (ctx) => ({
    bytes: insertAtBoundary(line(fullRequest(badId(ctx), content)), [0x00], pick),
    valid: false,
    fields: ['encoding'],
  }),
}));

const duplicate: fc.Arbitrary<Case> = fc.tuple(fc.nat(), fc.boolean()).map(([pick, shorthand]) => ({
  label: 'duplicate id',
  build: (ctx) => {
    const earlier = ctx.validIds[pick % Math.max(1, ctx.validIds.length)];
    if (earlier === undefined)
      return { bytes: line({ custom_id: validId(ctx), prompt: 'first' }), valid: true };
    const bytes = line(shorthand ? { custom_id: earlier, prompt: 'again' } : fullRequest(earlier, 'again'));
    return { bytes, valid: false, fields: ['custom_id'] };
  },
}));

const tooDeep: fc.Arbitrary<Case> = fc.integer({ min: 256, max: 20_000 }).map((depth) => ({
  label: `nested ${depth} deep`,
  build: (ctx) => ({
    bytes: Buffer.from(
      `{"custom_id":"${badId(ctx)}","params":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
    ),
    valid: false,
    fields: ['params'],
  }),
}));

const hostileCase: fc.Arbitrary<Case> = fc.oneof(
  { weight: 2, arbitrary: validFull },
  { weight: 1, arbitrary: validShorthand },
  { weight: 1, arbitrary: validBlocks },
  { weight: 3, arbitrary: brokenJson },
  { weight: 2, arbitrary: garbage },
  { weight: 1, arbitrary: notAnObject },
  { weight: 6, arbitrary: wrongField },
  { weight: 1, arbitrary: badShorthand },
  { weight: 1, arbitrary: hugeValue },
  { weight: 2, arbitrary: illegalId },
  { weight: 2, arbitrary: invalidUtf8 },
  { weight: 1, arbitrary: nulByte },
  { weight: 2, arbitrary: duplicate },
  { weight: 1, arbitrary: tooDeep },
);

/** Blank lines between cases, and the line break after each one. */
const layout = fc.record({
  blanksBefore: fc.constantFrom<string[]>([], [], [], [''], ['   '], ['\t', '']),
  crlf: fc.boolean(),
});

// eslint-disable-next-line no-control-regex -- control characters are what must not get through.
const UNSAFE = /[\u0000-\u001f\u202a-\u202e\u200b-\u200f\u2066-\u2069]/;

describe('hostile input corpus', () => {
  it('reports every malformed line at its line number, and no valid line, without throwing', async () => {
    let malformedTotal = 0;
    let validTotal = 0;

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(hostileCase, layout), { minLength: 300, maxLength: 400 }),
        fc.integer({ min: 1, max: 4096 }),
        async (cases, chunkSize) => {
          // Line 1 is fixed so a generated BOM line never sits where a BOM is allowed.
          const parts: Buffer[] = [Buffer.from('{"custom_id":"first","prompt":"p"}\n')];
          const expected = new Map<
            number,
            { label: string; valid: boolean; fields?: string[] | undefined }
          >();
          const ctx: Context = { ordinal: 0, validIds: ['first'] };
          let lineNo = 1;
          for (const [testCase, { blanksBefore, crlf }] of cases) {
            const eol = crlf ? '\r\n' : '\n';
            for (const blank of blanksBefore) {
              parts.push(Buffer.from(blank + eol));
              lineNo++;
            }
            ctx.ordinal++;
            const built = testCase.build(ctx);
            lineNo++;
            parts.push(built.bytes, Buffer.from(eol));
            expected.set(lineNo, { label: testCase.label, valid: built.valid, fields: built.fields });
            if (built.valid) ctx.validIds.push(validId(ctx));
          }

          const result = await scanInput(memoryInput(parts, { name: 'hostile.jsonl', chunkSize }), {
            defaults: DEFAULTS,
            maxErrors: 0,
          });

          const reported = new Map<number, string[]>();
          for (const error of result.errors) {
            reported.set(error.line, [...(reported.get(error.line) ?? []), error.field]);
            // Reasons never echo long values or raw control, bidi or zero-width characters.
            expect(error.reason.length, error.format()).toBeLessThan(200);
            expect(error.field.length, error.format()).toBeLessThan(120);
            expect(error.format(), error.format()).not.toMatch(UNSAFE);
          }

          const mismatches: string[] = [];
          for (const [at, { label, valid, fields }] of expected) {
            const got = reported.get(at);
            if (valid && got !== undefined)
              mismatches.push(`line ${at} (${label}) reported: ${got.join(', ')}`);
            if (!valid && got === undefined) mismatches.push(`line ${at} (${label}) not reported`);
            if (!valid && got !== undefined && fields !== undefined && !fields.some((f) => got.includes(f))) {
              mismatches.push(
                `line ${at} (${label}) reported ${got.join(', ')}, expected ${fields.join(' or ')}`,
              );
            }
          }
          for (const at of reported.keys()) {
            if (!expected.has(at)) mismatches.push(`line ${at} is blank but was reported`);
          }
          expect(mismatches).toEqual([]);

          const valid = [...expected.values()].filter((e) => e.valid).length + 1;
          expect(result.count).toBe(valid);
          expect(result.invalidLines).toBe(expected.size + 1 - valid);
          expect(result.lines).toBe(lineNo);
          malformedTotal += result.invalidLines;
          validTotal += valid;
        },
      ),
      { seed: 0x5eed, numRuns: 4, endOnFailure: true },
    );

    expect(malformedTotal).toBeGreaterThanOrEqual(1000);
    expect(validTotal).toBeGreaterThan(100);
  });
});
