/**
 * The HTTP server: reads each body (bounded), then hands the request to the API or control routes.
 * A body over the limit is read to its end and discarded before the 413 goes out, so the client sees
 * the answer instead of a broken pipe.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleApi } from './api-routes.js';
import { isBatchCreate } from './batch-routes.js';
import type { EmulatorControl } from './control.js';
import { CONTROL_MAX_BODY_BYTES, CONTROL_PREFIX, handleControl } from './control-routes.js';
import type { EmulatorState } from './state.js';

/** Longer than common client pools keep idle sockets, so the server is not the one to close them mid-reuse. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface RunningServer {
  url: string;
  /** A bound function: `{ close: server.close }` may pass it on. */
  close: () => Promise<void>;
}

export async function listen(
  state: EmulatorState,
  control: EmulatorControl,
  host: string,
  port: number,
): Promise<RunningServer> {
  const server = createServer((req, res) => onRequest(state, control, req, res));
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.address.includes(':') ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () => (closing ??= closeServer(server, state)),
  };
}

function onRequest(
  state: EmulatorState,
  control: EmulatorControl,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? null : url.slice(q + 1);
  if (path.startsWith(CONTROL_PREFIX)) {
    readBody(req, CONTROL_MAX_BODY_BYTES, (body) =>
      handleControl(control, state.ids.next('req'), req, res, path, query, body),
    );
  } else {
    // A batch create has its own size limit (256 MB at the API, against 32 MB for a message).
    const max = isBatchCreate(req.method, path) ? state.batches.settings.maxBytes : state.maxBodyBytes;
    readBody(req, max, (body) => handleApi(state, req, res, path, query, body));
  }
}

/** Calls back with the whole body, or with null once it is known to exceed `max` (after draining it). */
function readBody(req: IncomingMessage, max: number, done: (body: Buffer | null) => void): void {
  const declared = req.headers['content-length'];
  let tooLarge = declared !== undefined && Number(declared) > max;
  let first: Buffer | null = null;
  let chunks: Buffer[] | null = null;
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > max) {
      tooLarge = true;
      first = null;
      chunks = null;
    } else if (first === null) {
      first = chunk;
    } else {
      (chunks ??= [first]).push(chunk);
    }
  });
  req.on('end', () => {
    if (tooLarge) done(null);
    else if (chunks !== null) done(Buffer.concat(chunks, size));
    else done(first ?? EMPTY);
  });
  // A client that gives up mid-body (or a reset) needs no answer.
  req.on('error', () => {});
}

const EMPTY = Buffer.alloc(0);

async function closeServer(server: Server, state: EmulatorState): Promise<void> {
  for (const timer of state.timers) clearTimeout(timer);
  state.timers.clear();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    // Hung and keep-alive connections would hold close() open forever.
    server.closeAllConnections();
  });
}
