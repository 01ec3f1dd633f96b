import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import type { Backbone } from '../../shared/backbone/index.js';
import { createApp, createJsonLogger, storeBackboneLoader } from '../../shared/http/index.js';
import type { ObjectStore } from '../../shared/store/index.js';

/** The committed CC0 sample photos: fidelity checks for the default backbone when it is first built. */
export function fixturePhotosDir(): string {
  return join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    'test',
    'fixtures',
    'clothing-mini',
    'eval',
  );
}

/**
 * The prediction API over the local stack's store, sharing its already-loaded backbone; the trunk of a
 * fine-tuned version is read from the store and loaded on first use.
 */
export async function startApiServer(options: {
  store: ObjectStore;
  backbone: Backbone;
  port: number;
  host: string;
  requireKeys: boolean;
  log: (line: string) => void;
}): Promise<{ url: string; close(): Promise<void> }> {
  const app = createApp({
    store: options.store,
    backbone: async () => options.backbone,
    backboneById: storeBackboneLoader(options.store),
    // Polling a local store costs nothing, so a new version is served within a second of its promotion.
    config: { requireKeys: options.requireKeys, pointerTtlSeconds: 1 },
    logger: createJsonLogger({ level: 'warn' }),
  });
  if (!options.requireKeys) {
    options.log('API keys are not required (local mode); set HEADSTART_REQUIRE_KEYS=true to require them');
  }
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
