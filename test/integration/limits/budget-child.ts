/* eslint-disable no-restricted-syntax -- a load-generating child process, not a test: it starts at an
   agreed instant and paces its own requests; nothing here waits for an outcome. */
/**
 * A worker-like process for the multi-process budget test: waits until `startAt`, then runs
 * `concurrency` loops of acquire → settle until `durationMs` has passed, and prints every grant
 * (Redis time, input tokens charged) as one JSON line on stdout.
 */
import { Redis } from 'ioredis';
import { createRateBudget, type BudgetClass, type BudgetLimits } from '../../../src/limits/index.js';

interface ChildArgs {
  url: string;
  accountId: string;
  classes: BudgetClass[];
  default: BudgetLimits;
  model: string;
  minInput: number;
  maxInput: number;
  outputTokens: number;
  concurrency: number;
  startAt: number;
  durationMs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const redis = new Redis(args.url, { maxRetriesPerRequest: null });
const budget = createRateBudget({
  redis,
  accountId: args.accountId,
  classes: args.classes,
  default: args.default,
});
const grants: Array<[number, number]> = [];

await new Promise((resolve) => setTimeout(resolve, Math.max(0, args.startAt - Date.now())));
const stop = new AbortController();
const timer = setTimeout(() => stop.abort(), args.durationMs);

async function loop(): Promise<void> {
  while (!stop.signal.aborted) {
    const inputTokens = args.minInput + Math.floor(Math.random() * (args.maxInput - args.minInput + 1));
    let lease;
    try {
      lease = await budget.acquire(
        { model: args.model, inputTokens, outputTokens: args.outputTokens },
        stop.signal,
      );
    } catch (err) {
      if (stop.signal.aborted) return;
      throw err;
    }
    grants.push([lease.grantedAt ?? 0, lease.charged?.inputTokens ?? 0]);
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    await budget.settle(lease, {
      usage: { input_tokens: inputTokens, output_tokens: args.outputTokens },
      headers: {},
    });
  }
}

await Promise.all(Array.from({ length: args.concurrency }, () => loop()));
clearTimeout(timer);
await budget.close();
redis.disconnect();
process.stdout.write(`${JSON.stringify({ grants })}\n`);
