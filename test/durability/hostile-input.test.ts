/**
 * Promise 6: hostile input through the CLI. A generated file of more than 1,000 malformed lines
 * (with valid and blank lines between them) submitted with `--max-errors 0`: exit 2, every bad
 * line reported at its line number and no good one, the process never crashes, and nothing is
 * written to Redis.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileCorpus } from './hostile-corpus.js';
import { durabilityEnv, newPrefix, Sandbox } from './helpers.js';

const SEED = Number(process.env['DURABILITY_SEED'] ?? 6_2026);

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await Sandbox.start('hostile');
});

afterAll(async () => {
  await sandbox?.dispose();
});

describe('hostile input through `claude-batch submit`', () => {
  it('reports every one of 1,000+ malformed lines at its line number, exits 2, and writes no key', async () => {
    const corpus = hostileCorpus(SEED, 1_200);
    expect(corpus.malformed).toBeGreaterThanOrEqual(1_000);
    const file = join(sandbox.dir, 'hostile.jsonl');
    await writeFile(file, corpus.bytes);
    const prefix = newPrefix('hostile');

    const res = await sandbox.cli(
      ['submit', file, '--max-errors', '0'],
      durabilityEnv(sandbox.redis.url, prefix, null),
    );

    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    // Never a crash: no stack trace, no generic failure line.
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stderr).not.toMatch(/^claude-batch: /m);

    const stderrLines = res.stderr.split('\n').filter((l) => l !== '');
    const summary = stderrLines.at(-1) ?? '';
    expect(summary).toMatch(new RegExp(`^${corpus.malformed} invalid lines( \\(\\d+ errors\\))? in `));
    // Every other line is one FILE:LINE: field: reason; hostile text never breaks a line apart.
    const reported = new Map<number, string[]>();
    for (const line of stderrLines.slice(0, -1)) {
      expect(line.startsWith(`${file}:`), JSON.stringify(line.slice(0, 200))).toBe(true);
      const match = /^(\d+): ([^:]+): ./.exec(line.slice(file.length + 1));
      expect(match, JSON.stringify(line.slice(0, 200))).not.toBeNull();
      const n = Number(match![1]);
      reported.set(n, [...(reported.get(n) ?? []), match![2]!]);
      // Control and bidi characters are shown escaped, never raw.
      // eslint-disable-next-line no-control-regex -- control characters are what must not get through.
      expect(line).not.toMatch(/[\u0000-\u001f\u202a-\u202e\u2066-\u2069]/);
      // Huge values are shortened in messages.
      expect(line.length).toBeLessThan(2_000);
    }
    const missed = corpus.lines.filter((l) => !l.valid && !reported.has(l.line));
    const wronglyBlamed = corpus.lines.filter((l) => l.valid && reported.has(l.line));
    expect(missed).toEqual([]);
    expect(wronglyBlamed).toEqual([]);
    expect(reported.size).toBe(corpus.malformed);

    // Nothing written: not under the prefix, not anywhere in this private Redis.
    const redis = new Redis(sandbox.redis.url);
    try {
      expect(await redis.keys(`${prefix}:*`)).toEqual([]);
      expect(await redis.dbsize()).toBe(0);
    } finally {
      redis.disconnect();
    }
    const kinds = new Map<string, number>();
    for (const l of corpus.lines) if (!l.valid) kinds.set(l.kind, (kinds.get(l.kind) ?? 0) + 1);
    console.log(
      `[durability] hostile-input seed=${SEED}: ${corpus.malformed} malformed lines (${[...kinds]
        .map(([k, n]) => `${k} ${n}`)
        .join(
          ', ',
        )}), ${corpus.lines.length - corpus.malformed} valid; ${corpus.bytes.length} bytes; all reported, exit 2`,
    );
  });
});
