import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BudgetsFileError,
  ModelClassResolver,
  globToRegExp,
  loadBudgetsFile,
  parseBudgets,
  resolveModelClass,
} from '../../../src/limits/index.js';

describe('budgets file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-budgets-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a valid file', async () => {
    const path = join(dir, 'ok.json');
    await writeFile(
      path,
      JSON.stringify([
        { match: 'claude-haiku-*', rpm: 4000, itpm: 2_000_000, otpm: 400_000 },
        { match: 'claude-opus-*', name: 'opus', rpm: 50 },
      ]),
    );
    expect(await loadBudgetsFile(path)).toEqual([
      { match: 'claude-haiku-*', rpm: 4000, itpm: 2_000_000, otpm: 400_000 },
      { match: 'claude-opus-*', name: 'opus', rpm: 50 },
    ]);
  });

  it('names the file when it cannot be read or parsed', async () => {
    await expect(loadBudgetsFile(join(dir, 'missing.json'))).rejects.toThrow(
      /missing\.json: cannot read.*ENOENT/,
    );
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '[{"match": "x",]');
    await expect(loadBudgetsFile(bad)).rejects.toThrow(BudgetsFileError);
    await expect(loadBudgetsFile(bad)).rejects.toThrow(/bad\.json: not valid JSON/);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['not an array', { match: 'x' }, /f\.json: expected a JSON array.*got an object/],
    ['entry not an object', ['x'], /f\.json: entry 0: expected an object, got "x"/],
    [
      'missing match',
      [{ rpm: 1 }],
      /f\.json: entry 0, field "match": expected a non-empty glob.*got nothing/,
    ],
    ['empty match', [{ match: '' }], /entry 0, field "match".*got ""/],
    [
      'negative limit',
      [{ match: 'a' }, { match: 'b', rpm: -1 }],
      /entry 1, field "rpm": expected a non-negative integer.*got -1/,
    ],
    ['string limit', [{ match: 'a', itpm: '2000' }], /entry 0, field "itpm".*got "2000"/],
    ['fraction', [{ match: 'a', otpm: 1.5 }], /entry 0, field "otpm".*got 1\.5/],
    ['unknown field', [{ match: 'a', tpm: 10 }], /entry 0, field "tpm": unknown field \(value 10\)/],
    ['bad name', [{ match: 'a', name: 3 }], /entry 0, field "name".*got 3/],
    [
      'duplicate',
      [{ match: 'a' }, { match: 'b', name: 'a' }],
      /entry 1, field "name": class name "a" is already used by entry 0/,
    ],
    ['reserved name', [{ match: 'default' }], /entry 0, field "match": "default" is the name/],
  ];
  for (const [title, value, message] of cases) {
    it(`rejects: ${title}`, () => {
      expect(() => parseBudgets(JSON.stringify(value), 'f.json')).toThrow(message);
    });
  }

  // The whole message: the file, the entry and field, what the field takes and the value found.
  const messages: Array<[string, unknown, string]> = [
    [
      'a wrong type',
      [{ match: 'a', itpm: '2000' }],
      'entry 0, field "itpm": expected a non-negative integer (0 = no limit), got "2000"',
    ],
    [
      'a negative number',
      [{ match: 'a' }, { match: 'b', rpm: -1 }],
      'entry 1, field "rpm": expected a non-negative integer (0 = no limit), got -1',
    ],
    [
      'an unknown field (a typo would silently mean no limit), before the problems it explains',
      [
        { match: 'a', rpm: 'x' },
        { match: 'b', tpm: 10 },
      ],
      'entry 1, field "tpm": unknown field (value 10); expected match, name, rpm, itpm, otpm',
    ],
    [
      'a control character in a name',
      [{ match: 'a', name: 'x\ny' }],
      'entry 0, field "name": expected a non-empty string of at most 100 characters, got "x\\u000ay"',
    ],
  ];
  for (const [title, value, message] of messages) {
    it(`refuses ${title}, in one message`, () => {
      expect(() => parseBudgets(JSON.stringify(value), 'budgets.json')).toThrow(
        new BudgetsFileError(`budgets.json: ${message}`),
      );
    });
  }
});

describe('model classes', () => {
  it('matches whole ids by glob, first class wins, else the default', () => {
    const resolver = new ModelClassResolver(
      [
        { match: 'claude-haiku-*', rpm: 4000 },
        { match: 'claude-*-4-?', name: 'fours', rpm: 100 },
        { match: 'claude-*', itpm: 5 },
      ],
      { rpm: 50 },
    );
    expect(resolver.resolve('claude-haiku-4-5').name).toBe('claude-haiku-*');
    expect(resolver.resolve('claude-opus-4-1')).toMatchObject({ name: 'fours', rpm: 100, itpm: 0, otpm: 0 });
    expect(resolver.resolve('claude-opus-4-10').name).toBe('claude-*');
    expect(resolver.resolve('xclaude-haiku-1')).toMatchObject({ name: 'default', match: null, rpm: 50 });
    expect(resolveModelClass('claude-haiku-3', [{ match: 'claude-haiku-*', otpm: 9 }]).otpm).toBe(9);
    expect(resolveModelClass('gpt', []).name).toBe('default');
  });

  it('treats every other character literally', () => {
    const re = globToRegExp('a.b+(c)[d]{e}|f^$\\g/h-i');
    expect(re.test('a.b+(c)[d]{e}|f^$\\g/h-i')).toBe(true);
    expect(re.test('aXb+(c)[d]{e}|f^$\\g/h-i')).toBe(false);
  });

  it('validates default limits', () => {
    expect(() => new ModelClassResolver([], { rpm: -5 })).toThrow(
      /default budget: field "rpm": expected a non-negative integer \(0 = no limit\), got -5/,
    );
  });
});
