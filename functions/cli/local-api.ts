import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Backbone } from '../../shared/backbone/index.js';
import { createEdgeApp, createJsonLogger, storeBackboneLoader } from '../../shared/http/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { createUiApp } from '../../shared/ui/index.js';
import { CliError } from './cli-errors.js';
import { inProcessPredictor, withDashboard } from './ui-wiring.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** The API's port, taken before anything else starts; it answers 503 until the app is attached. */
export interface ApiPort {
  url: string;
  attach(listener: Listener): void;
  close(): Promise<void>;
}

/**
 * Binds the API's port first, so a port in use is one line and an exit before the store, the backbone or any
 * worker is touched.
 */
export async function bindApiPort(options: { port: number; host: string }): Promise<ApiPort> {
  let handler: Listener | undefined;
  const server: Server = createServer((req, res) => {
    if (handler) return handler(req, res);
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
    res.end(
      JSON.stringify({ error: { code: 'starting', message: 'Headstart is starting; try again shortly' } }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new CliError(
            `port ${options.port} on ${options.host} is in use (another Headstart or another program); set PORT=<free port> (PORT=0 picks one)`,
          ),
        );
      } else if (err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
        reject(
          new CliError(`cannot listen on ${options.host}:${options.port} (${err.code}); set HOST or PORT`),
        );
      } else reject(err);
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    attach: (listener) => {
      handler = listener;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The prediction API over the local stack's store, sharing its already-loaded backbone, on a port already bound;
 * the trunk of a fine-tuned version is read from the store and loaded on first use. The dashboard is served
 * under /ui/ on the same port.
 */
export async function startApiServer(options: {
  listener: ApiPort;
  store: ObjectStore;
  backbone: Backbone;
  requireKeys: boolean;
  maxUploadBytes?: number;
  log: (line: string) => void;
}): Promise<{ url: string; close(): Promise<void> }> {
  const backbone = async () => options.backbone;
  const backboneById = storeBackboneLoader(options.store);
  const { app, models } = createEdgeApp({
    store: options.store,
    backbone,
    backboneById,
    // Polling a local store costs nothing, so a new version is served within a second of its promotion.
    config: { requireKeys: options.requireKeys, pointerTtlSeconds: 1 },
    logger: createJsonLogger({ level: 'warn' }),
  });
  if (!options.requireKeys) {
    options.log('API keys are not required (local mode); set HEADSTART_REQUIRE_KEYS=true to require them');
  }
  const ui = createUiApp({
    store: options.store,
    predict: inProcessPredictor({ store: options.store, backbone, backboneById, models }),
    ...(options.maxUploadBytes ? { maxUploadBytes: options.maxUploadBytes } : {}),
  });
  options.listener.attach(withDashboard(ui, getRequestListener(app.fetch)));
  options.log(`dashboard: ${options.listener.url}/ui/`);
  return { url: options.listener.url, close: () => options.listener.close() };
}
