/**
 * A seeded generator of hostile JSONL input for the CLI: malformed lines of every kind (broken JSON,
 * wrong types, missing fields, huge strings, unicode edge cases, invalid UTF-8, NUL bytes, duplicate
 * and illegal ids, nesting too deep), mixed with valid lines and blank lines, each with the line
 * number it lands on. (test/unit/batch/hostile-input.test.ts has a fast-check corpus of its own for
 * the scanner; it lives inside a test file, so it is not importable from here.)
 */
import { seededRandom } from './helpers.js';

export interface CorpusLine {
  /** 1-based line number in the file. */
  line: number;
  /** What kind of line it is, for failure messages. */
  kind: string;
  valid: boolean;
}

export interface Corpus {
  bytes: Buffer;
  lines: CorpusLine[];
  malformed: number;
}

const MODEL = 'claude-haiku-4-5';

// Text that has broken parsers and terminals: bidi overrides, zero-width characters, BOMs, JS line
// separators, escape sequences, lone surrogates (as JSON escapes), astral and combining characters.
const EDGE_TEXT = [
  '\u202e',
  '\u2066',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u2028',
  '\u2029',
  '\u001b[31m',
  '\ud800',
  '\udfff',
  '🙂',
  '👨‍👩‍👧',
  '🇫🇷',
  'שלום',
  'e\u0301',
  '"',
  '\\',
  '\u0000',
  '\r',
  '\n',
];

const ILLEGAL_IDS = [
  '',
  ' ',
  'a b',
  'a/b',
  'a.b',
  'a:b',
  'x'.repeat(65),
  'ü',
  'id\u200b',
  '\u202eid',
  'id🙂',
  'id\ud800',
  'a\u0000b',
  '\n',
];

const INVALID_UTF8 = [[0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xe2, 0x82], [0xf8]];

type Json = Record<string, unknown>;

function full(id: string, content: unknown = 'hello'): Json {
  return { custom_id: id, params: { model: MODEL, max_tokens: 16, messages: [{ role: 'user', content }] } };
}

/** Breaks one field of a valid request in one way. */
const MUTATIONS: Array<(r: Json, p: Json) => void> = [
  (r) => (r['custom_id'] = 12),
  (r) => (r['custom_id'] = null),
  (r) => (r['custom_id'] = ['a']),
  (r) => delete r['custom_id'],
  (r) => (r['params'] = 'params'),
  (r) => (r['params'] = [1]),
  (r) => (r['params'] = null),
  (r) => delete r['params'],
  (_, p) => (p['model'] = 7),
  (_, p) => (p['model'] = ''),
  (_, p) => delete p['model'],
  (_, p) => (p['max_tokens'] = 0),
  (_, p) => (p['max_tokens'] = -3),
  (_, p) => (p['max_tokens'] = 2.5),
  (_, p) => (p['max_tokens'] = '100'),
  (_, p) => (p['max_tokens'] = Number.POSITIVE_INFINITY),
  (_, p) => delete p['max_tokens'],
  (_, p) => (p['messages'] = []),
  (_, p) => (p['messages'] = { role: 'user' }),
  (_, p) => delete p['messages'],
  (_, p) => (p['messages'] = ['hello']),
  (_, p) => (p['messages'] = [{ role: 'system', content: 'x' }]),
  (_, p) => (p['messages'] = [{ content: 'x' }]),
  (_, p) => (p['messages'] = [{ role: 'user' }]),
  (_, p) => (p['messages'] = [{ role: 'user', content: 3 }]),
  (_, p) => (p['messages'] = [{ role: 'user', content: [7] }]),
  (_, p) => (p['messages'] = [{ role: 'user', content: [{ text: 'no type' }] }]),
  (_, p) => (p['system'] = 5),
  (_, p) => (p['system'] = [null]),
  (_, p) => (p['stream'] = true),
  (r) => (r['prompt'] = 'both prompt and params'),
  (r) => (r['customid'] = 'typo'),
];

/**
 * Builds a corpus of at least `malformedCount` malformed lines, with a valid line roughly every
 * tenth line and a few blank ones. Deterministic for a given seed.
 */
export function hostileCorpus(seed: number, malformedCount: number): Corpus {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const text = () =>
    Array.from({ length: 1 + Math.floor(random() * 5) }, () =>
      random() < 0.6 ? pick(EDGE_TEXT) : String.fromCharCode(32 + Math.floor(random() * 0x2f00)),
    ).join('');
  const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');

  const parts: Buffer[] = [];
  const lines: CorpusLine[] = [];
  const validIds: string[] = [];
  let lineNo = 0;
  let malformed = 0;
  const push = (bytes: Buffer, kind: string, valid: boolean) => {
    lineNo += 1;
    parts.push(bytes, Buffer.from(random() < 0.2 ? '\r\n' : '\n'));
    if (kind !== 'blank') lines.push({ line: lineNo, kind, valid });
    if (!valid) malformed += 1;
  };

  const makers: Array<[string, (n: number) => Buffer]> = [
    [
      'truncated JSON',
      (n) => {
        const whole = JSON.stringify(full(`bad${n}`, text()));
        return Buffer.from(whole.slice(0, 1 + Math.floor(random() * (whole.length - 2))), 'utf8');
      },
    ],
    ['garbage', () => Buffer.from(`#${text().replace(/[\r\n]/g, ' ')} not json`, 'utf8')],
    ['not an object', () => Buffer.from(pick(['[]', '[{"custom_id":"a"}]', '"text"', '42', 'null', 'true']))],
    [
      'wrong type or missing field',
      (n) => {
        const r = full(`bad${n}`, text());
        pick(MUTATIONS)(r, r['params'] as Json);
        return json(r);
      },
    ],
    [
      'huge string in the wrong place',
      (n) => {
        const huge = '\u202e'.repeat(3) + 'x'.repeat(20_000 + Math.floor(random() * 100_000));
        const r = full(`bad${n}`);
        const p = r['params'] as Json;
        const where = pick(['model', 'max_tokens', 'role', 'id', 'key']);
        if (where === 'model') p['model'] = [huge];
        else if (where === 'max_tokens') p['max_tokens'] = huge;
        else if (where === 'role') p['messages'] = [{ role: huge, content: 'x' }];
        else if (where === 'id') r['custom_id'] = huge;
        else r[huge] = 1;
        return json(r);
      },
    ],
    [
      'illegal custom_id',
      () => {
        const id = pick(ILLEGAL_IDS);
        return json(random() < 0.5 ? { custom_id: id, prompt: 'p' } : full(id));
      },
    ],
    [
      'invalid UTF-8',
      (n) => {
        const bytes = json(full(`bad${n}`, text()));
        // Before an ASCII byte, so the insertion never splits a character that was valid.
        let at = Math.floor(random() * bytes.length);
        while (at < bytes.length && (bytes[at] ?? 0) >= 0x80) at += 1;
        return Buffer.concat([bytes.subarray(0, at), Buffer.from(pick(INVALID_UTF8)), bytes.subarray(at)]);
      },
    ],
    [
      'raw NUL byte',
      (n) => {
        const bytes = json(full(`bad${n}`, text()));
        const at = 1 + Math.floor(random() * (bytes.length - 1));
        return Buffer.concat([bytes.subarray(0, at), Buffer.from([0]), bytes.subarray(at)]);
      },
    ],
    ['duplicate custom_id', () => json(full(pick(validIds), 'again'))],
    [
      'nested too deep',
      (n) => {
        const depth = 300 + Math.floor(random() * 5_000);
        return Buffer.from(
          `{"custom_id":"bad${n}","params":{"model":"${MODEL}","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
        );
      },
    ],
  ];

  // Line 1 is valid, so duplicates always have something to repeat.
  validIds.push('v0');
  push(json(full('v0', 'the first line')), 'valid', true);
  for (let n = 1; malformed < malformedCount; n++) {
    const roll = random();
    if (roll < 0.03) {
      push(Buffer.from(pick(['', '   ', '\t'])), 'blank', true);
    } else if (roll < 0.12) {
      const id = `v${n}`;
      validIds.push(id);
      push(json(full(id, `valid ${text()}`)), 'valid', true);
    } else {
      const [kind, make] = pick(makers);
      push(make(n), kind, false);
    }
  }
  return { bytes: Buffer.concat(parts), lines, malformed };
}
