// Local Node entry: `tsx functions/edge/local-server.ts` serves the edge app on HOST:PORT (default 127.0.0.1:8787).
import { realpathSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { readEnv } from '../../shared/config.js';
import {
  createEdgeRuntime,
  type EdgeRuntime,
  type EdgeRuntimeConfig,
  type EdgeRuntimeOverrides,
  envEdgeConfig,
} from '../../shared/http/index.js';

export interface LocalServerOptions {
  config: EdgeRuntimeConfig;
  port: number;
  host: string;
  overrides?: EdgeRuntimeOverrides;
}

export interface LocalServer {
  url: string;
  runtime: EdgeRuntime;
  close(): Promise<void>;
}

/** Starts listening at once (so /healthz answers) while the backbone loads. `port: 0` picks a free port. */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const runtime = createEdgeRuntime(options.config, options.overrides);
  const warming = runtime.warm();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: runtime.app.fetch, port: options.port, hostname: options.host }, () =>
      resolve(s),
    );
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host}:${port}`;
  void warming;
  return {
    url,
    runtime,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets would hold close() open until they time out.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

let lazy: EdgeRuntime | undefined;

/** A fetch handler over the environment's configuration, for hosts that take one. */
export const handler = (request: Request): Response | Promise<Response> => {
  lazy ??= createEdgeRuntime(envEdgeConfig(readEnv(), { requireKeys: false }));
  return lazy.app.fetch(request);
};

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const env = readEnv();
  const server = await startLocalServer({
    config: envEdgeConfig(env, { requireKeys: false }),
    port: env.PORT,
    host: env.HOST,
  });
  const keys = server.runtime.config.app.requireKeys
    ? 'API keys required'
    : 'API keys NOT required (set HEADSTART_REQUIRE_KEYS=true to require them)';
  console.log(
    `headstart edge listening on ${server.url} (store ${server.runtime.store.description}; ${keys})`,
  );
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
