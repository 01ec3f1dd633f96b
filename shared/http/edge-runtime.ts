import type { Context } from 'hono';
import {
  BackboneNotFoundError,
  loadBackbone,
  readBackbone,
  readDefaultBackboneId,
} from '../backbone/index.js';
import { type ObjectStore, openStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createEdgeApp, type EdgeApp, type EdgeAppConfig } from './app.js';
import type { EdgeRuntimeConfig } from './edge-config.js';
import { createJsonLogger, describeError, type EdgeLogger } from './edge-logger.js';
import type { BackboneByIdProvider, BackboneProvider, ModelCache } from './model-cache.js';
import type { ReviewRecorder } from './review-recorder.js';

/**
 * Loads the backbone named by `backboneId`, or the store's default, into the wasm backend. Weights are checked
 * against their sha256 while parsing; the load runs one warm-up image so the first request does not pay for
 * kernel set-up.
 */
export function storeBackboneProvider(
  store: ObjectStore,
  options: { backboneId?: string; wasmDir?: string } = {},
): BackboneProvider {
  const load = storeBackboneLoader(store, options);
  return async () => {
    // The wasm runtime starts while the pointer is read; the loader's own initTf then finds it ready.
    const [, id] = await Promise.all([
      initTf(options.wasmDir ? { wasmDir: options.wasmDir } : {}),
      options.backboneId ?? readDefaultBackboneId(store),
    ]);
    if (!id) {
      throw new BackboneNotFoundError(
        `${store.description} has no default backbone (backbones/default.json); deploy one before serving predictions`,
      );
    }
    return load(id);
  };
}

/**
 * Loads any stored backbone by id into the wasm backend, checked and warmed up like the default one: how the
 * edge serves a fine-tuned version on its trunk (`backbones/<trunk id>/`), on first use.
 */
export function storeBackboneLoader(
  store: ObjectStore,
  options: { wasmDir?: string } = {},
): BackboneByIdProvider {
  return async (id) => {
    const [, pkg] = await Promise.all([
      initTf(options.wasmDir ? { wasmDir: options.wasmDir } : {}),
      readBackbone(store, id),
    ]);
    return loadBackbone(pkg);
  };
}

export interface EdgeRuntimeOverrides {
  store?: ObjectStore;
  backbone?: BackboneProvider;
  backboneById?: BackboneByIdProvider;
  logger?: EdgeLogger;
  clock?: () => number;
  isBodyTruncated?: (c: Context) => boolean;
}

export interface EdgeRuntime {
  app: EdgeApp;
  store: ObjectStore;
  models: ModelCache;
  /** Review writes started by requests; `settle()` them where the runtime freezes after a response. */
  reviews: ReviewRecorder;
  config: EdgeRuntimeConfig;
  /** Starts loading the backbone now; resolves when loaded, or after logging why not (requests retry). */
  warm(): Promise<void>;
}

/** The wiring every entry shares: store, backbone, model cache and app from one configuration. */
export function createEdgeRuntime(
  config: EdgeRuntimeConfig,
  overrides: EdgeRuntimeOverrides = {},
): EdgeRuntime {
  const logger = overrides.logger ?? createJsonLogger({ level: config.logLevel });
  const store = overrides.store ?? openStore(config.store);
  const appConfig: Partial<EdgeAppConfig> = {
    ...config.app,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
  };
  const { app, models, reviews } = createEdgeApp({
    store,
    backbone:
      overrides.backbone ??
      storeBackboneProvider(store, {
        ...(config.backboneId ? { backboneId: config.backboneId } : {}),
        ...(config.wasmDir ? { wasmDir: config.wasmDir } : {}),
      }),
    backboneById:
      overrides.backboneById ?? storeBackboneLoader(store, config.wasmDir ? { wasmDir: config.wasmDir } : {}),
    config: appConfig,
    logger,
    ...(overrides.isBodyTruncated ? { isBodyTruncated: overrides.isBodyTruncated } : {}),
  });
  logger.info('edge app configured', {
    store: store.description,
    backbone: config.backboneId ?? 'store default',
    requireKeys: appConfig.requireKeys ?? true,
  });
  return {
    app,
    store,
    models,
    reviews,
    config,
    warm: () =>
      models.backbone().then(
        () => undefined,
        (err: unknown) =>
          logger.warn('backbone not loaded at start; requests will retry', describeError(err)),
      ),
  };
}
