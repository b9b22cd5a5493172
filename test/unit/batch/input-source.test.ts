import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputChangedError } from '../../../src/batch/input-error.js';
import { openInput } from '../../../src/batch/input-source.js';
import { readRequests } from '../../../src/batch/read-requests.js';
import { scanInput } from '../../../src/batch/scan-input.js';
import { collect, fullLine, promptLine } from './helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'claude-batch-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const defaults = { model: 'm', maxTokens: 10 };

describe('openInput("-")', () => {
  it('spools stdin so both passes can read it, and removes the spool on close', async () => {
    const stdin = new PassThrough();
    const opening = openInput('-', { stdin, tmpDir: dir });
    // Written in pieces after opening, as a pipe would deliver it.
    stdin.write(`${promptLine('a')}\n`);
    stdin.write(`${fullLine('b')}\n`);
    stdin.end('not json\n');
    const source = await opening;

    expect(source.name).toBe('<stdin>');
    const scanned = await scanInput(source, { defaults });
    expect(scanned.count).toBe(2);
    expect(scanned.errors.map((e) => e.format())).toEqual([
      '<stdin>:3: json: not valid JSON: unexpected character "o"',
    ]);
    const again = await scanInput(source, { defaults });
    expect(again.fingerprint).toBe(scanned.fingerprint);

    expect(await readdir(dir)).toHaveLength(1);
    await source.close();
    await source.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps the spool private to the user', async () => {
    const source = await openInput('-', { stdin: Readable.from([Buffer.from('x\n')]), tmpDir: dir });
    const [spoolDir] = await readdir(dir);
    const { statSync } = await import('node:fs');
    expect(statSync(join(dir, spoolDir ?? '', 'input.jsonl')).mode & 0o077).toBe(0);
    expect(source.size).toBe(2);
    await source.close();
  });

  it('removes the spool and reports the input when stdin fails', async () => {
    const stdin = new PassThrough();
    const opening = openInput('-', { stdin, tmpDir: dir });
    stdin.write('partial');
    stdin.destroy(new Error('boom'));
    await expect(opening).rejects.toThrow('cannot read input <stdin>: boom');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('openInput(path)', () => {
  it('reads a file by the name the user gave', async () => {
    const file = join(dir, 'p.jsonl');
    await writeFile(file, `${fullLine('a')}\n{}\n`);
    const source = await openInput(file);
    const result = await scanInput(source, { defaults });
    expect(result.errors[0]?.format()).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: custom_id: missing`),
    );
    await source.close();
    expect(existsSync(file)).toBe(true);
  });

  it('refuses a missing file and a directory with a clear message', async () => {
    await expect(openInput(join(dir, 'nope.jsonl'))).rejects.toThrow(
      /^cannot read input .*nope\.jsonl: ENOENT$/,
    );
    await expect(openInput(dir)).rejects.toThrow(/it is a directory$/);
  });

  it('throws InputChangedError when the file changes between passes', async () => {
    const file = join(dir, 'p.jsonl');
    await writeFile(file, `${fullLine('a')}\n`);
    const source = await openInput(file);
    await scanInput(source, { defaults });
    await writeFile(file, `${fullLine('a')}\n${fullLine('b')}\n`);
    await expect(collect(readRequests(source, { defaults }))).rejects.toBeInstanceOf(InputChangedError);
  });

  it('notices a same-size edit by its modification time', async () => {
    const file = join(dir, 'p.jsonl');
    await writeFile(file, `${fullLine('a')}\n`);
    const source = await openInput(file);
    await writeFile(file, `${fullLine('b')}\n`);
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(() => source.open()).toThrow(InputChangedError);
  });
});
