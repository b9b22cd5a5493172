import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { request, resultsById } from '../../helpers/batch.js';
import { cliEnv, runCli } from '../../helpers/cli.js';
import { deletePrefix, uniquePrefix } from '../../helpers/runtime.js';

let emulator: EmulatorHandle;
let dir: string;
const prefixes: string[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ seed: 11, latency: { fixedMs: 20 } });
  dir = await mkdtemp(join(tmpdir(), 'cb-run-'));
});

afterAll(async () => {
  await emulator.close();
  for (const p of prefixes) await deletePrefix(p);
  await rm(dir, { recursive: true, force: true });
});

function envFor(name: string) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return cliEnv({
    CLAUDE_BATCH_PREFIX: prefix,
    ANTHROPIC_API_KEY: 'sk-test-run-cli-key',
    ANTHROPIC_BASE_URL: emulator.url,
    CLAUDE_BATCH_BACKOFF_BASE_MS: '50',
    CLAUDE_BATCH_BACKOFF_MAX_MS: '200',
  });
}

describe('claude-batch run', () => {
  it('on a small file writes a complete results file, prints the status table and exits 0', async () => {
    const requests = Array.from({ length: 25 }, (_, i) =>
      request(`run-${i}`, `Item ${i}${i === 3 ? ' @@fault:api_error:1@@' : ''}`),
    );
    const file = join(dir, 'small.jsonl');
    const out = join(dir, 'small.results.jsonl');
    await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n'));
    const res = await runCli(['run', file, '--out', out, '--order', 'input'], envFor('run'));
    expect(res.stderr).not.toMatch(/claude-batch: /);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/ended/);
    expect(res.stdout).toMatch(/25 total: 25 succeeded, 0 errored/);
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    const results = resultsById(lines);
    expect([...results.keys()]).toEqual(requests.map((r) => r.custom_id));
    for (const r of requests) {
      expect(results.get(r.custom_id)?.type).toBe('succeeded');
      expect(JSON.stringify(results.get(r.custom_id))).toContain(replyFingerprint(r.params));
    }
  });

  it('--via batches: the canary live, the rest through the hosted API, the same results file', async () => {
    const requests = Array.from({ length: 30 }, (_, i) => request(`hosted-${i}`, `Hosted item ${i}`));
    const file = join(dir, 'hosted.jsonl');
    const out = join(dir, 'hosted.results.jsonl');
    await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n'));
    const before = emulator.control.stats().hostedBatches.created;
    const res = await runCli(['run', file, '--out', out, '--order', 'input', '--via', 'batches'], {
      ...envFor('run-hosted'),
      CLAUDE_BATCH_HOSTED_POLL_MS: '100',
    });
    expect(res.stderr).not.toMatch(/claude-batch: /);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/30 total: 30 succeeded, 0 errored/);
    const results = resultsById((await readFile(out, 'utf8')).trim().split('\n'));
    expect([...results.keys()]).toEqual(requests.map((r) => r.custom_id));
    expect(emulator.control.stats().hostedBatches.created).toBe(before + 1);
  });

  it('rejects an unknown --via and a past --deadline naming the flag, and enqueues nothing', async () => {
    const file = join(dir, 'flags.jsonl');
    await writeFile(file, JSON.stringify(request('f', 'x')));
    const via = await runCli(['submit', file, '--via', 'hosted'], envFor('via-flag'));
    expect(via.code).toBe(2);
    expect(via.stderr).toContain('--via: must be one of live, batches, auto, got "hosted"');
    const deadline = await runCli(
      ['submit', file, '--deadline', '2020-01-01T00:00:00Z'],
      envFor('deadline-flag'),
    );
    expect(deadline.code).toBe(2);
    expect(deadline.stderr).toContain('--deadline: 2020-01-01T00:00:00Z is not in the future');
  });

  it('exits 1 when some requests errored, with the errored lines in the results', async () => {
    const requests = [request('fine', 'ok'), request('bad', 'nope @@fault:invalid_request_error@@')];
    const file = join(dir, 'errs.jsonl');
    const out = join(dir, 'errs.results.jsonl');
    await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n'));
    const res = await runCli(['run', file, '--out', out], envFor('run-err'));
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/invalid_request_error/);
    const results = resultsById((await readFile(out, 'utf8')).trim().split('\n'));
    expect(results.get('bad')).toMatchObject({
      type: 'errored',
      error: { error: { type: 'invalid_request_error' } },
    });
  });
});

describe('claude-batch worker --until-idle', () => {
  it('works a submitted batch, then exits 0; status --json and results follow the contract', async () => {
    const env = envFor('idle');
    const requests = Array.from({ length: 12 }, (_, i) => request(`w-${i}`, `Work ${i}`));
    requests.push(request('w-bad', 'x @@fault:request_too_large@@'));
    const file = join(dir, 'idle.jsonl');
    await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n'));
    const submitted = await runCli(['submit', file], env);
    expect(submitted.code).toBe(0);
    const batchId = submitted.stdout.trim().split('\n').at(-1)!;

    const worker = await runCli(['worker', '--until-idle', '--concurrency', '4'], env);
    expect(worker.code).toBe(0);

    const status = JSON.parse((await runCli(['status', batchId, '--json'], env)).stdout) as Record<
      string,
      unknown
    >;
    expect(status).toMatchObject({
      id: batchId,
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 12, errored: 1, canceled: 0 },
      errored_by_type: { request_too_large: 1 },
    });
    const results = resultsById((await runCli(['results', batchId], env)).stdout.trim().split('\n'));
    expect(results.size).toBe(13);
    expect(results.get('w-bad')).toMatchObject({
      type: 'errored',
      error: { type: 'error', error: { type: 'request_too_large' }, request_id: expect.any(String) },
    });
    const dlq = JSON.parse(
      (await runCli(['dlq', 'list', '--batch', batchId, '--json'], env)).stdout,
    ) as unknown[];
    expect(dlq).toEqual([
      {
        batch_id: batchId,
        custom_id: 'w-bad',
        status: 413,
        error_type: 'request_too_large',
        condition: null,
        reason: 'terminal',
        message: expect.any(String),
        attempts: 1,
        maybe_billed: 0,
        failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        request_id: expect.any(String),
        model: 'claude-haiku-4-5',
      },
    ]);
    const wait = await runCli(['wait', batchId], env);
    expect(wait.code).toBe(1);

    // Export keeps the request with its entry; purge needs --yes off a terminal, and keeps the results line.
    const exported = join(dir, 'dlq.jsonl');
    expect((await runCli(['dlq', 'export', '--out', exported, '--batch', batchId], env)).code).toBe(0);
    const [entry] = (await readFile(exported, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entry).toMatchObject({
      custom_id: 'w-bad',
      reason: 'terminal',
      params: { model: 'claude-haiku-4-5' },
    });
    const refused = await runCli(['dlq', 'purge', '--batch', batchId], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/pass --yes/);
    const purged = await runCli(['dlq', 'purge', '--batch', batchId, '--yes'], env);
    expect(purged.stderr).toMatch(/1 dead-letter entries removed/);
    expect(JSON.parse((await runCli(['dlq', 'list', '--batch', batchId, '--json'], env)).stdout)).toEqual([]);
    const after = resultsById((await runCli(['results', batchId], env)).stdout.trim().split('\n'));
    expect(after.get('w-bad')?.type).toBe('errored');
  });

  it('exits 0 with a warning when the queue is paused with requests waiting, instead of waiting forever', async () => {
    const env = envFor('idle-paused');
    const file = join(dir, 'paused.jsonl');
    await writeFile(
      file,
      [request('a', 'one'), request('b', 'two')].map((r) => JSON.stringify(r)).join('\n'),
    );
    expect((await runCli(['submit', file], env)).code).toBe(0);
    expect((await runCli(['pause'], env)).code).toBe(0);
    const worker = await runCli(['worker', '--until-idle'], env);
    expect(worker.code).toBe(0);
    expect(worker.stderr).toMatch(/the queue is paused with 2 requests waiting/);
  });
});
