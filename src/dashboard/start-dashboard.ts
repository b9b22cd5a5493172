import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from '../runtime.js';
import { assertSafeBinding, DashboardConfigError } from './auth.js';
import {
  createDashboard,
  resolveDashboardOptions,
  type Dashboard,
  type DashboardOptions,
} from './create-dashboard.js';

export interface RunningDashboard {
  /** Where to open it in a browser on this machine (a wildcard address is shown as loopback). */
  url: string;
  /** The address actually bound. */
  address: { host: string; port: number };
  server: Server;
  dashboard: Dashboard;
  /** Stops listening and drops open connections (browsers keep them alive). Leaves the runtime open. */
  close(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Creates the dashboard and listens. Refuses (with {@link DashboardConfigError}) to listen beyond
 * loopback without credentials.
 */
export async function startDashboard(
  runtime: Runtime,
  options: DashboardOptions = {},
): Promise<RunningDashboard> {
  const resolved = resolveDashboardOptions(options);
  assertSafeBinding(resolved.host, resolved.auth);
  const dashboard = createDashboard(runtime, options);
  const { host, port } = dashboard.options;
  const server = createServer(dashboard.app);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(
          new DashboardConfigError(
            `port ${port} on ${host} is in use: choose another with --port (0 picks a free one)`,
          ),
        );
      } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
        reject(new DashboardConfigError(`cannot listen on ${host}: no such local address`));
      } else {
        reject(err);
      }
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host)}:${bound.port}/`,
    address: { host: bound.address, port: bound.port },
    server,
    dashboard,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
