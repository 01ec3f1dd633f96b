import { join } from 'node:path';
import { DOWNSCALE_HINT } from '../backbone/index.js';
import type { Env } from '../config.js';
import type { StoreSpec } from '../store/index.js';
import type { EdgeAppConfig } from './app.js';
import type { LogLevel } from './edge-logger.js';

/** CloudFront origin custom headers read when the bundle was built without a bucket or region. */
export const ORIGIN_HEADER_BUCKET = 'x-headstart-bucket';
export const ORIGIN_HEADER_REGION = 'x-headstart-region';

/** Lambda@Edge gives a function at most 1 MB of the request body (origin-request events, body included). */
export const LAMBDA_EDGE_MAX_BODY_BYTES = 1024 * 1024;

/** Where the edge's objects are (see shared/store's StoreSpec). */
export type StoreConfig = StoreSpec;

/** Everything an entry needs to build the edge app; the app's own knobs are in `app`. */
export interface EdgeRuntimeConfig {
  store: StoreConfig;
  /** Backbone id to serve; unset means the store's `backbones/default.json`. */
  backboneId?: string;
  wasmDir?: string;
  logLevel: LogLevel;
  app: Partial<Omit<EdgeAppConfig, 'clock' | 'random'>>;
}

/** What a Lambda@Edge bundle was built with (see functions/edge/baked-config.ts). */
export interface BakedEdgeConfig {
  bucket?: string;
  region?: string;
  backboneId?: string;
  requireKeys?: boolean;
  pointerTtlSeconds?: number;
  wasmDir?: string;
}

type HeaderList = Record<string, { key?: string; value: string }[] | undefined>;

/**
 * The Lambda@Edge configuration: baked constants first, then the origin's custom headers (set on the CloudFront
 * origin, so one bundle can serve any bucket). Undefined when neither names a bucket.
 */
export function lambdaEdgeConfig(
  baked: BakedEdgeConfig,
  originHeaders: HeaderList | undefined,
): EdgeRuntimeConfig | undefined {
  const header = (name: string) => originHeaders?.[name]?.[0]?.value?.trim() || undefined;
  const bucket = baked.bucket ?? header(ORIGIN_HEADER_BUCKET);
  if (!bucket) return undefined;
  const region = baked.region ?? header(ORIGIN_HEADER_REGION);
  return {
    store: { kind: 's3', bucket, ...(region ? { region } : {}) },
    ...(baked.backboneId ? { backboneId: baked.backboneId } : {}),
    ...(baked.wasmDir ? { wasmDir: baked.wasmDir } : {}),
    logLevel: 'info',
    app: {
      maxBodyBytes: LAMBDA_EDGE_MAX_BODY_BYTES,
      requireKeys: baked.requireKeys ?? true,
      ...(baked.pointerTtlSeconds ? { pointerTtlSeconds: baked.pointerTtlSeconds } : {}),
      bodyLimitHint: `CloudFront passes Lambda@Edge at most 1 MB of request body; downscale the photo (${DOWNSCALE_HINT}) or call the Function URL, which takes up to 6 MB`,
    },
  };
}

/**
 * Configuration from the environment (already parsed by shared/config's readEnv, the one place that reads
 * it): the Function URL and the local server. With a bucket the store is S3 (or an S3-compatible endpoint),
 * otherwise the file-system store under `HEADSTART_HOME/store`.
 */
export function envEdgeConfig(env: Env, defaults: { requireKeys: boolean }): EdgeRuntimeConfig {
  return {
    store: env.HEADSTART_BUCKET
      ? {
          kind: 's3',
          bucket: env.HEADSTART_BUCKET,
          region: env.AWS_REGION,
          ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
        }
      : { kind: 'fs', root: localStoreRoot(env.HEADSTART_HOME) },
    ...(env.HEADSTART_BACKBONE ? { backboneId: env.HEADSTART_BACKBONE } : {}),
    ...(env.HEADSTART_WASM_DIR ? { wasmDir: env.HEADSTART_WASM_DIR } : {}),
    logLevel: 'info',
    app: {
      requireKeys: env.HEADSTART_REQUIRE_KEYS ?? defaults.requireKeys,
      maxPixels: env.HEADSTART_MAX_PIXELS,
      pointerTtlSeconds: env.HEADSTART_POINTER_TTL_SECONDS,
      maxBodyBytes: env.HEADSTART_MAX_BODY_BYTES,
      headCacheSize: env.HEADSTART_HEAD_CACHE_SIZE,
    },
  };
}

/** Where the local stack keeps its file-system store. */
export function localStoreRoot(home: string): string {
  return join(home, 'store');
}
