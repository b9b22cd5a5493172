import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { getBreakerState } from '../breakers/breaker-state.js';
import { pauseQueue, resumeQueue } from '../breakers/breakers.js';
import type { Runtime } from '../runtime.js';
import { Secret, scrub } from '../secret.js';
import { getBatchStatus, listBatchStatuses } from '../operations/batch-status.js';
import {
  DashboardConfigError,
  requireAuth,
  requireLocalHostHeader,
  requireSameOrigin,
  type DashboardAuth,
} from './auth.js';
import { renderBatchPage } from './batch-page.js';
import { readSnapshot } from './dashboard-data.js';
import { renderMetrics, type BudgetSnapshotProvider } from './metrics.js';
import { DEFAULT_PRICE_TABLE, type PriceTable } from '../pricing/price-table.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus-text.js';

export interface DashboardOptions {
  /** Address to listen on. Default 127.0.0.1; beyond loopback, credentials are required. */
  host?: string;
  /** Default 3000; 0 picks a free port. */
  port?: number;
  /** Bull Board in read-only mode, and every mutating route answers 403. Default false. */
  readOnly?: boolean;
  /** Required on every route when set. See {@link authFromEnv}. */
  auth?: DashboardAuth;
  /** For cost estimates. Default {@link DEFAULT_PRICE_TABLE}. */
  priceTable?: PriceTable;
  /** The shared rate budget's levels for /metrics (optional). */
  budgetSnapshot?: BudgetSnapshotProvider;
  /** Seconds between reloads of the batch page; 0 turns it off. Default 5. */
  refreshSeconds?: number;
}

/** The options with their defaults applied. */
export interface ResolvedDashboardOptions {
  host: string;
  port: number;
  readOnly: boolean;
  auth: DashboardAuth;
  priceTable: PriceTable;
  budgetSnapshot: BudgetSnapshotProvider | undefined;
  refreshSeconds: number;
}

export interface Dashboard {
  app: Express;
  options: ResolvedDashboardOptions;
}

/** Where Bull Board is mounted. */
const BOARD_PATH = '/queues';

export function resolveDashboardOptions(options: DashboardOptions = {}): ResolvedDashboardOptions {
  const port = options.port ?? 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new RangeError(`port must be 0-65535, got ${port}`);
  const auth = options.auth ?? {};
  if (auth.token !== undefined && auth.token.reveal() === '')
    throw new DashboardConfigError('the dashboard token is empty');
  if (auth.basic !== undefined) {
    if (auth.basic.user === '' || auth.basic.user.includes(':')) {
      throw new DashboardConfigError('the dashboard user name must be non-empty and contain no ":"');
    }
    if (auth.basic.password.reveal() === '')
      throw new DashboardConfigError('the dashboard password is empty');
  }
  return {
    host: options.host ?? '127.0.0.1',
    port,
    readOnly: options.readOnly ?? false,
    auth,
    priceTable: options.priceTable ?? DEFAULT_PRICE_TABLE,
    budgetSnapshot: options.budgetSnapshot,
    refreshSeconds: options.refreshSeconds ?? 5,
  };
}

/** Every secret the process knows, to be scrubbed from whatever our routes send. */
function knownSecrets(runtime: Runtime, auth: DashboardAuth): Secret[] {
  const secrets: Secret[] = [];
  if (runtime.config.apiKey) secrets.push(runtime.config.apiKey);
  if (auth.token) secrets.push(auth.token);
  if (auth.basic) secrets.push(auth.basic.password);
  try {
    const password = new URL(runtime.config.redisUrl).password;
    if (password) secrets.push(new Secret(decodeURIComponent(password)));
  } catch {
    // Not a URL: nothing to scrub.
  }
  return secrets;
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * The dashboard as an Express app, not yet listening: the batch page at `/`, JSON at `/api/batches`
 * and `/api/breakers`, Prometheus metrics at `/metrics`, Bull Board at `/queues`, and (unless
 * read-only) `POST /api/pause` and `/api/resume`. The runtime stays the caller's to close.
 */
export function createDashboard(runtime: Runtime, options: DashboardOptions = {}): Dashboard {
  const resolved = resolveDashboardOptions(options);
  const { auth, readOnly } = resolved;
  const secrets = knownSecrets(runtime, auth);
  const clean = (text: string) => scrub(text, secrets);
  const sendJson = (res: Response, value: unknown, status = 200) => {
    res
      .status(status)
      .set('Cache-Control', 'no-store')
      .type('application/json')
      .send(clean(JSON.stringify(value)));
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requireLocalHostHeader(auth, resolved.host));
  app.use(requireAuth(auth));
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.set(SECURITY_HEADERS);
    next();
  });
  app.use(requireSameOrigin);

  app.get('/', async (_req, res) => {
    const snapshot = await readSnapshot(runtime);
    const page = renderBatchPage({
      snapshot,
      prices: resolved.priceTable,
      prefix: runtime.keys.bullPrefix,
      readOnly,
      refreshSeconds: resolved.refreshSeconds,
      boardPath: BOARD_PATH.slice(1),
    });
    res
      .set({ 'Content-Security-Policy': PAGE_CSP, 'Cache-Control': 'no-store' })
      .type('text/html; charset=utf-8')
      .send(clean(page));
  });

  app.get('/api/batches', async (_req, res) => {
    sendJson(res, await listBatchStatuses(runtime));
  });

  app.get('/api/batches/:id', async (req, res) => {
    const status = await getBatchStatus(runtime, String(req.params['id']));
    if (status) sendJson(res, status);
    else sendJson(res, { error: `no batch ${String(req.params['id'])}` }, 404);
  });

  app.get('/api/breakers', async (_req, res) => {
    sendJson(res, await getBreakerState(runtime));
  });

  app.get('/metrics', async (_req, res) => {
    const [stats, snapshot] = await Promise.all([runtime.store.stats(), readSnapshot(runtime)]);
    const body = await renderMetrics({
      stats,
      snapshot,
      prices: resolved.priceTable,
      budgetSnapshot: resolved.budgetSnapshot,
      logger: runtime.logger,
    });
    res.set({ 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' }).send(clean(body));
  });

  const queueAction = (action: 'pause' | 'resume') => async (req: Request, res: Response) => {
    if (readOnly) {
      sendJson(res, { error: 'the dashboard is read-only' }, 403);
      return;
    }
    // As `claude-batch pause`/`resume`: a pause is recorded like a breaker so every view says why,
    // and resuming also clears the key breaker.
    if (action === 'pause') await pauseQueue(runtime);
    else await resumeQueue(runtime);
    runtime.logger.info(`dashboard: queue ${action === 'pause' ? 'paused' : 'resumed'}`, { ip: req.ip });
    if (req.accepts(['json', 'html']) === 'html') res.redirect(303, '../');
    else sendJson(res, { paused: await runtime.requests.isPaused() });
  };
  app.post('/api/pause', queueAction('pause'));
  app.post('/api/resume', queueAction('resume'));

  // Bull Board's own read-only mode hides its buttons and refuses most changes (405), but its
  // pause-all/resume-all answer 200 without effect: in read-only mode any change is refused here, first.
  if (readOnly) {
    app.use(BOARD_PATH, (req: Request, res: Response, next: NextFunction) => {
      if (req.method === 'GET' || req.method === 'HEAD') return next();
      sendJson(res, { error: 'the dashboard is read-only' }, 403);
    });
  }
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(runtime.requests as Queue, {
        readOnlyMode: readOnly,
        description: 'Requests to send (one job per request; job id batch.custom_id.generation).',
      }),
      new BullMQAdapter(runtime.deadLetters as Queue, {
        readOnlyMode: readOnly,
        allowRetries: false,
        description: 'Requests that ended errored. Retry them with `claude-batch dlq retry`, not from here.',
      }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'claude-batch', miscLinks: [{ text: 'Batches', url: '/' }] } },
  });
  app.use(BOARD_PATH, serverAdapter.getRouter() as express.Router);

  app.use((_req: Request, res: Response) => {
    sendJson(res, { error: 'not found' }, 404);
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    runtime.logger.error('dashboard: request failed', {
      error: err instanceof Error ? err.message : String(err),
    });
    if (res.headersSent) return;
    sendJson(res, { error: 'internal error: see the dashboard log' }, 500);
  });

  return { app, options: resolved };
}
