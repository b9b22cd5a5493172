import { createAlerter } from '../breakers/alert.js';
import { registerAccount } from '../breakers/breakers.js';
import { MissingApiKeyError } from '../errors/runner-errors.js';
import { createClaudeClient, type ClaudeClient } from '../claude/claude-client.js';
import { InFlightController } from '../limits/in-flight-controller.js';
import {
  createRateBudget,
  DEFAULT_CLASS_NAME,
  loadBudgetsFile,
  type SharedRateBudgetApi,
} from '../limits/index.js';
import type { RateBudget } from '../limits/rate-budget.js';
import { redisDurabilityWarnings } from '../redis/redis-health.js';
import type { Runtime } from '../runtime.js';
import type { Secret } from '../secret.js';
import { ClaudeWorker } from './claude-worker.js';
import { createHostedApi } from '../hosted/hosted-api.js';
import { routePlanOf } from '../hosted/route.js';

export interface StartWorkerOptions {
  /** Default: an SDK client built from the config (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL). */
  client?: ClaudeClient | undefined;
  /** Default: the shared budget built from the config's --rpm/--itpm/--otpm and budgets file. */
  budget?: RateBudget | undefined;
  /** Default: the config's ANTHROPIC_API_KEY. */
  apiKey?: Secret | undefined;
}

/**
 * Starts a worker in this process with the runtime's config. Stop it with `close()`, or close the
 * runtime, which closes it too.
 */
export async function startWorker(runtime: Runtime, options: StartWorkerOptions = {}): Promise<ClaudeWorker> {
  const { config, logger } = runtime;
  const apiKey = options.apiKey ?? config.apiKey;
  let client = options.client;
  if (!client) {
    if (!apiKey) {
      throw new MissingApiKeyError(
        'ANTHROPIC_API_KEY is not set: export it in the environment (it is never accepted as a flag), or point ANTHROPIC_BASE_URL at the emulator and set any key.',
      );
    }
    client = createClaudeClient({
      apiKey,
      baseURL: config.baseURL,
      timeoutMs: config.requestTimeoutMs,
      streamMinMaxTokens: config.streamMinMaxTokens,
    });
  }
  for (const warning of await redisDurabilityWarnings(runtime.redis)) logger.warn(warning);
  const accountId = accountIdOf(config.baseURL, apiKey);
  const budget = options.budget ?? (await budgetFromConfig(runtime, apiKey));
  const resolver = budget as Partial<SharedRateBudgetApi>;
  const classOf = resolver.resolveModelClass
    ? (model: string) => resolver.resolveModelClass!(model).name
    : () => DEFAULT_CLASS_NAME;
  const inFlight = new InFlightController({
    redis: runtime.redis,
    accountId,
    probeQuietMs: config.concurrencyProbeQuietMs,
    // A dead worker's slots come back when its jobs do.
    leaseTtlMs: config.lockDurationMs,
    logger,
  });

  // The hosted Message Batches endpoints (issue 14), with the same key and base URL. Without a key
  // (a custom client) there are none: batches `--via batches|auto` wait for a worker that has one.
  const hostedApi = apiKey
    ? createHostedApi({ apiKey, baseURL: config.baseURL, timeoutMs: config.requestTimeoutMs })
    : undefined;
  const retry = {
    maxAttempts: config.maxAttempts,
    maxRetryWaitMs: config.maxRetryWaitMs,
    maxMaybeBilled: config.maxMaybeBilled,
    backoff: { baseDelayMs: config.backoffBaseMs, maxDelayMs: config.backoffMaxMs },
  };
  const alert = createAlerter({ logger, webhookUrl: config.alertWebhookUrl });
  const worker = new ClaudeWorker(runtime, {
    client,
    budget,
    retry,
    alert,
    modelBreakerThreshold: config.modelBreakerThreshold,
    storm: { accountId, threshold: config.stormThreshold },
    concurrency: config.concurrency,
    inFlight,
    classOf,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
    gracePeriodMs: config.gracePeriodMs,
    reconcileIntervalMs: config.reconcileIntervalMs,
    reconcileStallMs: config.reconcileStallMs,
    hosted: hostedApi && {
      api: hostedApi,
      retry,
      alert,
      accountId,
      modelBreakerThreshold: config.modelBreakerThreshold,
      maxRequests: config.hostedMaxRequests,
      maxBytes: config.hostedMaxBytes,
      pollMinMs: config.hostedPollMs,
      pollMaxMs: config.hostedPollMaxMs,
      plan: routePlanOf(config),
      createTimeoutMs: config.requestTimeoutMs,
      lockTtlMs: config.lockDurationMs,
    },
  });
  // Before the first job: a key tripped under another prefix pauses this one from the start.
  await registerAccount(runtime, accountId);
  worker.start();
  // A script that closes only the runtime must not hang on a worker it forgot.
  runtime.onClose(() => worker.close());
  logger.info('worker started', {
    concurrency: config.concurrency,
    prefix: runtime.keys.bullPrefix,
    api: config.baseURL ?? 'https://api.anthropic.com',
  });
  return worker;
}

/**
 * The account a worker's shared state belongs to: the API key's fingerprint (never the key). Without
 * a key (a custom client) the account is named by the base URL.
 */
function accountIdOf(baseURL: string | undefined, apiKey: Secret | undefined): string {
  return (
    apiKey?.fingerprint() ??
    `url-${Buffer.from(baseURL ?? 'default')
      .toString('hex')
      .slice(0, 16)}`
  );
}

/**
 * The shared budget from --rpm/--itpm/--otpm and the budgets file, keyed by the API key's
 * fingerprint: every worker of the same account shares it, whatever its queue prefix.
 */
export async function budgetFromConfig(
  runtime: Runtime,
  apiKey: Secret | undefined,
): Promise<SharedRateBudgetApi> {
  const { config, logger } = runtime;
  return createRateBudget({
    redis: runtime.redis,
    accountId: accountIdOf(config.baseURL, apiKey),
    classes: config.budgetsFile ? await loadBudgetsFile(config.budgetsFile) : [],
    default: { rpm: config.rpm, itpm: config.itpm, otpm: config.otpm },
    logger,
  });
}
