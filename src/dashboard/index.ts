export {
  AUTH_ENV,
  DashboardConfigError,
  assertSafeBinding,
  authFromEnv,
  isLoopbackHost,
  type DashboardAuth,
} from './auth.js';
export { renderBatchPage, fixFor, type BatchPageInput } from './batch-page.js';
export {
  BOARD_PATH,
  createDashboard,
  resolveDashboardOptions,
  type Dashboard,
  type DashboardOptions,
  type ResolvedDashboardOptions,
} from './create-dashboard.js';
export { readSnapshot, type DashboardSnapshot, type QueueSnapshot } from './dashboard-data.js';
export { budgetFamilies, renderMetrics, runnerFamilies, type BudgetSnapshotProvider } from './metrics.js';
export {
  DEFAULT_PRICES,
  DEFAULT_PRICE_TABLE,
  PRICES_FILE_HELP,
  PriceTableError,
  estimateCost,
  findPrice,
  loadPriceTable,
  parsePriceTable,
  type CostEstimate,
  type ModelPrice,
  type PriceTable,
} from '../pricing/price-table.js';
export { PROMETHEUS_CONTENT_TYPE, formatMetrics, type MetricFamily } from './prometheus-text.js';
export { startDashboard, type RunningDashboard } from './start-dashboard.js';
