export {
  AUTH_ENV,
  DashboardConfigError,
  assertSafeBinding,
  authFromEnv,
  isLoopbackHost,
  type DashboardAuth,
} from './auth.js';
export type { BudgetSnapshotProvider } from './metrics.js';
export {
  DEFAULT_PRICES,
  DEFAULT_PRICE_TABLE,
  PRICES_FILE_HELP,
  PriceTableError,
  estimateCost,
  findPrice,
  loadPriceTable,
  type PriceTable,
} from '../pricing/price-table.js';
export { startDashboard, type RunningDashboard } from './start-dashboard.js';
