import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, deleteBudgetKeys, REDIS_URL, uniqueAccount } from './helpers.js';

const CHILD = fileURLToPath(new URL('./budget-child.ts', import.meta.url));

function runChild(args: object): Promise<Array<[number, number]>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`budget child exited ${code}: ${err}`));
      try {
        resolve(
          (JSON.parse(out.trim().split('\n').pop() ?? '{}') as { grants: Array<[number, number]> }).grants,
        );
      } catch (e) {
        reject(new Error(`budget child printed no result: ${String(e)} ${out} ${err}`));
      }
    });
  });
}

/**
 * The token-bucket bound: for every run of consecutive grants (by Redis time) i..j, what they
 * charged is at most capacity + rate x (t_j - t_i).
 */
function worstExcess(
  grants: Array<[number, number]>,
  capacity: number,
  perMinute: number,
  cost: (g: [number, number]) => number,
) {
  const rate = perMinute / 60_000;
  let worst = -Infinity;
  for (let j = 0; j < grants.length; j++) {
    let sum = 0;
    for (let i = j; i >= 0; i--) {
      sum += cost(grants[i]!);
      const allowed = capacity + rate * (grants[j]![0] - grants[i]![0]);
      worst = Math.max(worst, sum - allowed);
    }
  }
  return worst;
}

describe('three worker processes share one bucket', () => {
  const admin = connect();
  const accountId = uniqueAccount('procs');

  afterAll(async () => {
    await deleteBudgetKeys(admin, accountId);
    admin.disconnect();
  });

  it('never grant more than capacity + refill x elapsed, by Redis time, across processes', async () => {
    const RPM = 240; // 4/s
    const ITPM = 24_000; // 400 tokens/s; requests of 50-150 tokens
    const durationMs = 5_000;
    const startAt = Date.now() + 4_000; // after every child has loaded
    const common = {
      url: REDIS_URL,
      accountId,
      classes: [],
      default: { rpm: RPM, itpm: ITPM },
      model: 'claude-test',
      minInput: 50,
      maxInput: 150,
      outputTokens: 10,
      concurrency: 16,
      startAt,
      durationMs,
    };
    const results = await Promise.all([runChild(common), runChild(common), runChild(common)]);
    for (const grants of results) expect(grants.length).toBeGreaterThan(0);
    const all = results.flat().sort((a, b) => a[0] - b[0]);
    const requestExcess = worstExcess(all, RPM, RPM, () => 1);
    const inputExcess = worstExcess(all, ITPM, ITPM, (g) => g[1]);
    expect(requestExcess).toBeLessThanOrEqual(1e-6);
    expect(inputExcess).toBeLessThanOrEqual(1e-6);

    // And the budget was used: the binding limit admitted at least most of what it allows.
    const spanMs = all[all.length - 1]![0] - all[0]![0];
    const tokens = all.reduce((s, g) => s + g[1], 0);
    const requestUse = all.length / (RPM + (RPM / 60_000) * spanMs);
    const inputUse = tokens / (ITPM + (ITPM / 60_000) * spanMs);
    expect(Math.max(requestUse, inputUse)).toBeGreaterThan(0.5); // loose: CI machines are busy
  });
});
