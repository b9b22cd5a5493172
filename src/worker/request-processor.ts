import { DelayedError, Job, WaitingError } from 'bullmq';
import type { Alerter } from '../breakers/alert.js';
import { modelBreakerMessage } from '../breakers/breaker-state.js';
import type { CallResult, ClaudeClient } from '../claude/claude-client.js';
import type { StormOptions } from '../breakers/storm.js';
import { classHoldMs, ruleFor } from '../errors/classify.js';
import type { InFlightController, InFlightLease } from '../limits/in-flight-controller.js';
import { estimateRequest } from '../limits/estimate-tokens.js';
import { OverBudgetError, type BudgetLease, type RateBudget } from '../limits/rate-budget.js';
import { DeadJobSweeper } from '../queue/dead-job-sweep.js';
import { parkRequest } from '../queue/park.js';
import { requestJobId, type DeadLetterEntry, type RequestJobData } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { applyOutcome, finalizeDeadLetter, releaseIfCanary, type ApplyDeps } from './apply-outcome.js';
import { decideOutcome, type Outcome, type RetryPolicy } from './outcome.js';
import { CostGuard } from './cost-guard.js';
import { RequestGates, type Gate } from './request-gates.js';

export interface RequestProcessorDeps {
  runtime: Runtime;
  client: ClaudeClient;
  budget: RateBudget;
  retry: RetryPolicy;
  alert: Alerter;
  /** Consecutive model-wide failures that open a model's breaker. */
  modelBreakerThreshold: number;
  storm: StormOptions;
  /** See {@link ApplyDeps.writeRetryMs}. */
  writeRetryMs: number;
  /** Output tokens to reserve instead of max_tokens. Default: max_tokens. */
  outputEstimate?: number;
  /** The in-flight controller: one slot per request in flight, per (API key, model class). */
  inFlight: InFlightController;
  /** Told each API call's latency (send to answer, ms), for sizing the in-flight cap. */
  observeLatency?: ((ms: number) => void) | undefined;
  /** The model class of a model id (the budget's classes). */
  classOf: (model: string) => string;
  /**
   * How long a cost reservation outlives a worker that stopped renewing it (ms): the job lock
   * duration, after which the job itself is taken back. Default 30,000.
   */
  costLeaseMs?: number | undefined;
}

/**
 * Handles one request job: gates → estimate → acquire budget → call → classify → apply.
 * Every step before `applyOutcome` is free of Redis writes, so a crash anywhere before it leaves
 * the job to be redelivered as if it had never started (the call may have been made: delivery is
 * at-least-once for what was in flight).
 */
export class RequestProcessor {
  private readonly apply: ApplyDeps;
  /** Clears the run of dead jobs behind the first one a worker meets. */
  readonly sweeper: DeadJobSweeper;
  /** The batches' cost ceilings: reserve before the call, settle after (issue 15). */
  readonly cost: CostGuard;

  constructor(private readonly deps: RequestProcessorDeps) {
    this.apply = {
      runtime: deps.runtime,
      alert: deps.alert,
      gates: new RequestGates(deps.runtime, deps.storm.accountId),
      modelBreakerThreshold: deps.modelBreakerThreshold,
      storm: deps.storm,
      writeRetryMs: deps.writeRetryMs,
    };
    this.sweeper = new DeadJobSweeper(deps.runtime);
    this.cost = new CostGuard(deps.runtime, deps.costLeaseMs ?? 30_000);
  }

  async process(job: Job<RequestJobData>, token: string | undefined, signal?: AbortSignal): Promise<void> {
    const data = job.data;
    if ((job.attemptsStarted > 1 || data.resumed) && (await this.finishIfEnded(job))) return;

    const calls = data.calls ?? 0;
    const attempt = { calls, firstAt: data.first_at ?? null };
    const gate = await this.apply.gates.check(data);
    if (gate.kind !== 'open') return this.stop(job, token, gate, attempt);

    // Its worst case reserved against its batch's cost ceiling first (see CostGuard for why
    // before the slot and the budget); a batch paused at its ceiling parks it, unsent.
    const cost = await this.cost.admit(data, signal);
    if (cost.kind === 'aborted') return this.handBack(job, token);
    if (cost.kind === 'park') return parkRequest(this.deps.runtime, job, token);
    try {
      // A slot first: a request waiting for one holds no budget it cannot use yet.
      let slot: InFlightLease;
      try {
        slot = await this.deps.inFlight.acquire(this.deps.classOf(data.params.model), signal);
      } catch (err) {
        if (signal?.aborted) return this.handBack(job, token);
        throw err;
      }
      let slotHeld = true;
      const releaseSlot = async (concurrencyLimited: boolean) => {
        if (!slotHeld) return;
        slotHeld = false;
        await this.deps.inFlight.release(slot, { concurrencyLimited });
      };
      try {
        return await this.sendInSlot(job, token, signal, attempt, releaseSlot, cost.settle);
      } finally {
        await releaseSlot(false);
      }
    } finally {
      // Not sent (a closed gate, over budget, a stop): nothing was spent. A no-op once settled.
      await cost.settle(null);
    }
  }

  /** The rest of {@link process} once a slot is held; `releaseSlot` gives it back as soon as the call is over. */
  private async sendInSlot(
    job: Job<RequestJobData>,
    token: string | undefined,
    signal: AbortSignal | undefined,
    attempt: { calls: number; firstAt: number | null },
    releaseSlot: (concurrencyLimited: boolean) => Promise<void>,
    settleCost: (result: CallResult | null) => Promise<void>,
  ): Promise<void> {
    const data = job.data;
    const calls = attempt.calls;
    const estimate = estimateRequest(data.params, this.deps.outputEstimate);
    if (data.cached_prefix) {
      // Read from the cache (its canary wrote it): not input for the budget. The prefix estimate
      // counts 3 characters a token like the rest; leaving out 3/4 of it keeps the estimate on the
      // high side of the ~4 the API counts, and settlement corrects it to the real usage.
      estimate.inputTokens = Math.max(1, estimate.inputTokens - Math.floor((data.cached_prefix * 3) / 4));
    }
    // Waiting for the budget, requests of batches running at once are served in turn (fair share).
    estimate.lane = data.batch_id;
    estimate.weight = this.apply.gates.priorityOf(data.batch_id);
    let lease: BudgetLease;
    const waitStart = Date.now();
    try {
      lease = await this.deps.budget.acquire(estimate, signal);
    } catch (err) {
      if (signal?.aborted) return this.handBack(job, token);
      if (!(err instanceof OverBudgetError)) throw err;
      const outcome: Outcome = {
        kind: 'dead-letter',
        reason: 'over_budget',
        lastError: { status: null, type: 'over_budget', message: err.message, request_id: null },
      };
      return applyOutcome(this.apply, job, token, outcome, attempt);
    }

    const budgetWaitMs = Date.now() - waitStart;
    // The send-time check: one GET of the epoch (the gates are re-read only if it moved), after
    // the budget wait, which may have been long. Past this line the request is in flight: a
    // cancel, delete, pause or breaker that lands later lets it finish.
    const late = this.apply.gates.keyBreakerOpen()
      ? ({ kind: 'key-breaker' } as const)
      : await this.apply.gates.confirm(data);
    if (late.kind !== 'open') {
      await this.deps.budget.settle(lease, { usage: null, headers: {} });
      return this.stop(job, token, late, attempt);
    }
    const firstAt = data.first_at ?? Date.now();
    // A canary releases its model's held requests as soon as the API accepts it (issue 16): what it
    // proves (key, credit, model) is known at the first event, not at the end of its generation.
    let early: Promise<void> | undefined;
    const hooks = data.canary
      ? { onAccepted: () => void (early = this.releaseOnAcceptance(data)) }
      : undefined;
    const sentAt = performance.now();
    const result = await this.deps.client.call(data.params, signal, hooks);
    this.deps.observeLatency?.(performance.now() - sentAt);
    await releaseSlot(!result.ok && ruleFor(result.failure).rule.concurrencyLimit === true);
    await settleCost(result);
    await early;
    await this.deps.budget.settle(lease, {
      usage: result.ok ? result.usage : null,
      headers: result.ok ? result.headers : result.failure.headers,
      rateLimitedForMs: result.ok ? null : classHoldMs(result.failure),
    });
    if (signal?.aborted) return this.handBack(job, token);

    const outcome = decideOutcome(result, this.deps.retry, {
      calls: calls + 1,
      firstAt,
      now: Date.now(),
      maybeBilledSoFar: data.maybe_billed ?? 0,
    });
    await applyOutcome(this.apply, job, token, outcome, { calls: calls + 1, firstAt, budgetWaitMs });
  }

  /** Releases a canary's model once its answer has begun; a failure is left to the outcome's release. */
  private async releaseOnAcceptance(data: RequestJobData): Promise<void> {
    try {
      await releaseIfCanary(this.apply, data);
    } catch (err) {
      this.deps.runtime.logger.warn('early canary release failed; released with its outcome instead', {
        batch_id: data.batch_id,
        error: (err as Error).message,
      });
    }
  }

  /** Acts on a closed gate: the request is not sent. */
  private async stop(
    job: Job<RequestJobData>,
    token: string | undefined,
    gate: Exclude<Gate, { kind: 'open' }>,
    attempt: { calls: number; firstAt: number | null },
  ): Promise<void> {
    switch (gate.kind) {
      case 'gone':
        // Left over from a deleted batch (or incarnation): nothing to write; the job completes.
        this.sweeper.kick();
        return;
      case 'canceled':
        await applyOutcome(this.apply, job, token, { kind: 'canceled' }, attempt);
        this.sweeper.kick();
        return;
      case 'key-breaker':
        return this.hold(job, token);
      case 'model-breaker': {
        const { breaker } = gate;
        const outcome: Outcome = {
          kind: 'dead-letter',
          reason: 'model_breaker',
          condition: 'model',
          lastError: { status: null, type: breaker.type, message: '', request_id: null },
          message: modelBreakerMessage(breaker),
        };
        return applyOutcome(this.apply, job, token, outcome, attempt);
      }
    }
  }

  /**
   * A job that turned active again (after a retry, a stall or a resumed submit) may already have
   * ended: its result written, or its dead-letter entry added by a worker that died before
   * writing the result. Finish it from there instead of sending the request again.
   */
  async finishIfEnded(job: Job<RequestJobData>): Promise<boolean> {
    const { batch_id, custom_id, gen } = job.data;
    const inc = job.data.inc ?? 0;
    const { keys, redis, deadLetters } = this.deps.runtime;
    const replies = await redis
      .multi()
      .hmget(keys.batch(batch_id), 'id', 'deleted_at', 'incarnation')
      .hget(keys.results(batch_id), custom_id)
      .hget(keys.generations(batch_id), custom_id)
      .exec();
    const [meta, result, currentGen] = (replies ?? []).map(([, value]) => value);
    const [recordId, deletedAt, recordInc] = (meta ?? []) as Array<string | null>;
    // Gone: deleted, being deleted, or this job is left over from a deleted incarnation.
    if (!recordId || deletedAt || Number(recordInc ?? 0) !== inc) return true;
    if (((currentGen as string | null) ?? '0') !== String(gen)) return true;
    if (result === null || result === undefined) {
      const entry = await Job.fromId<DeadLetterEntry>(
        deadLetters,
        requestJobId(batch_id, custom_id, gen, inc),
      );
      if (!entry?.data) return false;
      await finalizeDeadLetter(this.apply, entry.data);
    }
    await releaseIfCanary(this.apply, job.data);
    return true;
  }

  /**
   * Puts a job back unsent while the key-wide breaker is open; it comes up again in a second, by
   * when the queue pause has taken hold and parks it with the rest. No attempt is spent.
   */
  private async hold(job: Job<RequestJobData>, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + 1_000, token);
    throw new DelayedError();
  }

  /** Returns the job to the waiting list untouched, for another worker (graceful stop). */
  private async handBack(job: Job<RequestJobData>, token: string | undefined): Promise<never> {
    await job.moveToWait(token);
    throw new WaitingError();
  }
}
