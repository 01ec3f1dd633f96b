// Lambda@Edge origin-request entry. CloudFront must be set to include the body; it passes at most 1 MB of it.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'hono';
import { type CloudFrontEdgeEvent, type CloudFrontRequest, handle } from 'hono/lambda-edge';
import {
  type BakedEdgeConfig,
  createEdgeRuntime,
  createErrorApp,
  type EdgeRuntimeConfig,
  type EdgeRuntimeOverrides,
  lambdaEdgeConfig,
  ORIGIN_HEADER_BUCKET,
  ServiceUnavailableError,
  type StoreConfig,
} from '../../shared/http/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { bakedEdgeConfig } from './baked-config.js';

type EdgeHandler = ReturnType<typeof handle>;

export interface LambdaEdgeHandlerOptions {
  /** Build-time configuration; without a bucket, the origin's custom headers must name one. */
  baked?: BakedEdgeConfig;
  /** Builds the store from the resolved configuration (default: S3). */
  createStore?: (config: StoreConfig) => ObjectStore;
  overrides?: Omit<EdgeRuntimeOverrides, 'store' | 'isBodyTruncated'>;
}

const isBodyTruncated = (c: Context) =>
  (c.env as { request?: CloudFrontRequest } | undefined)?.request?.body?.inputTruncated === true;

/**
 * The Lambda@Edge handler. The app is built once per instance: right away when the bucket is baked in (so the
 * backbone loads during init), else on the first event, from the origin's custom headers.
 */
export function createLambdaEdgeHandler(options: LambdaEdgeHandlerOptions = {}) {
  const baked = options.baked ?? {};
  let ready: EdgeHandler | undefined;
  const build = (config: EdgeRuntimeConfig): EdgeHandler => {
    const runtime = createEdgeRuntime(config, {
      ...options.overrides,
      ...(options.createStore ? { store: options.createStore(config.store) } : {}),
      isBodyTruncated,
    });
    void runtime.warm();
    const handler = handle(runtime.app);
    // Lambda freezes the instance once the handler returns: review writes finish first (bounded, never failing).
    return async (event, context) => {
      const response = await handler(event, context);
      await runtime.reviews.settle();
      return response;
    };
  };
  const bakedConfig = lambdaEdgeConfig(baked, undefined);
  if (bakedConfig) ready = build(bakedConfig);

  return async (event: CloudFrontEdgeEvent, context?: Record<string, never>) => {
    if (!ready) {
      const origin = event.Records?.[0]?.cf.request.origin;
      const config = lambdaEdgeConfig(baked, origin?.custom?.customHeaders ?? origin?.s3?.customHeaders);
      if (!config) {
        const error = new ServiceUnavailableError(
          'not_configured',
          `this edge function has no bucket: build it with __HEADSTART_BUCKET__ or set the origin custom header ${ORIGIN_HEADER_BUCKET}`,
        );
        return handle(createErrorApp(error))(event, context);
      }
      ready = build(config);
    }
    return ready(event, context);
  };
}

export const handler = createLambdaEdgeHandler({
  baked: bakedEdgeConfig(dirname(fileURLToPath(import.meta.url))),
});
