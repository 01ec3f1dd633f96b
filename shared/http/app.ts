import { OpenAPIHono, type OpenAPIHonoOptions } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { DOWNSCALE_HINT } from '../backbone/index.js';
import { DEFAULT_MAX_PIXELS } from '../image/index.js';
import type { ObjectStore } from '../store/index.js';
import { readTextBackbone } from '../text/index.js';
import { createAuthGate } from './auth-gate.js';
import { createPredictor } from './classify.js';
import { createTextPredictor } from './classify-text.js';
import type { EdgeApp, EdgeEnv } from './edge-env.js';
import { describeError, type EdgeLogger, silentLogger } from './edge-logger.js';
import { registerHealthRoutes } from './health-routes.js';
import { BadRequestError, type HttpError, NotFoundError, toHttpError } from './http-errors.js';
import {
  type BackboneByIdProvider,
  type BackboneProvider,
  createModelCache,
  type ModelCache,
  type TextBackboneProvider,
} from './model-cache.js';
import { registerModelRoute } from './model-route.js';
import { registerOpenApiDocument } from './openapi-document.js';
import { createPredictGate } from './predict-gate.js';
import { registerPredictRoutes } from './predict-routes.js';
import { bodyReader } from './read-body.js';
import { createReviewRecorder, type ReviewRecorder } from './review-recorder.js';

export type { EdgeApp } from './edge-env.js';

export interface EdgeAppConfig {
  /** Request bodies over this are refused with 413. Default 6 MB (Lambda's own request limit). */
  maxBodyBytes: number;
  /** How often a project's pointer is re-checked for a new version. Default 30 s. */
  pointerTtlSeconds: number;
  /** How often a project's settings (rejectUnknown, review) are re-checked. Default 300 s. */
  settingsTtlSeconds: number;
  /** Heads kept loaded per instance. Default 32. */
  headCacheSize: number;
  /** Require `Authorization: Bearer <key>` on project routes. Default true. */
  requireKeys: boolean;
  /** Images with more pixels than this are refused (422) from their header. Default 40 MP. */
  maxPixels: number;
  /** Predictions computed at once per instance. Default 2. */
  maxConcurrent: number;
  /** Predictions allowed to wait for a slot; beyond it 503 `overloaded`. Default 64. */
  maxQueue: number;
  /** Milliseconds; drives the pointer and key caches (tests inject it to step over the TTL). */
  clock: () => number;
  /** Appended to 413 messages: what to do about the limit where this app runs. */
  bodyLimitHint: string;
  /** Review items this instance writes per minute at most, over all projects. Default 30. */
  reviewMaxPerMinute: number;
  /** Photos over this many bytes are never kept for review. Default 4 MB. */
  reviewMaxBytes: number;
  /** In [0, 1); picks the review sample (tests inject it). */
  random: () => number;
}

export const DEFAULT_EDGE_CONFIG: EdgeAppConfig = {
  maxBodyBytes: 6 * 1024 * 1024,
  pointerTtlSeconds: 30,
  settingsTtlSeconds: 300,
  headCacheSize: 32,
  requireKeys: true,
  maxPixels: DEFAULT_MAX_PIXELS,
  maxConcurrent: 2,
  maxQueue: 64,
  clock: Date.now,
  bodyLimitHint: `downscale the photo before sending: ${DOWNSCALE_HINT}`,
  reviewMaxPerMinute: 30,
  reviewMaxBytes: 4 * 1024 * 1024,
  random: Math.random,
};

export interface EdgeAppDeps {
  store: ObjectStore;
  /** Loads the backbone this instance serves (once; see storeBackboneProvider). */
  backbone: BackboneProvider;
  /** Loads other backbones by id: the trunks fine-tuned versions run on (see storeBackboneLoader). */
  backboneById?: BackboneByIdProvider;
  /** Loads text backbones by id, for text versions. Default: from `store` (`text-backbones/<id>/`). */
  textBackbone?: TextBackboneProvider;
  config?: Partial<EdgeAppConfig>;
  logger?: EdgeLogger;
  /** A model cache to use instead of a new one, e.g. to inspect it in tests. */
  models?: ModelCache;
  /**
   * Whether the host cut the body short before the app saw it. Lambda@Edge does this above 1 MB and says so
   * with `inputTruncated`; classifying a truncated photo would give a confident wrong answer, so it is a 413.
   */
  isBodyTruncated?: (c: Context) => boolean;
}

/** Renders any error as `{"error": {"code", "message"}}`; the only place responses for errors are made. */
function renderError(err: unknown, c: Context, logger: EdgeLogger): Response {
  const http = toHttpError(err);
  if (http.status >= 500) {
    logger.error('request failed', {
      method: c.req.method,
      path: c.req.path,
      status: http.status,
      code: http.code,
      ...describeError(http.cause ?? http),
      ...(http.status === 500 && err instanceof Error ? { stack: err.stack } : {}),
    });
  }
  return c.json({ error: { code: http.code, message: http.message } }, http.status, { ...http.headers });
}

/** Fails a request whose parameters, query or body do not match its route's schema, naming the first issue. */
const rejectInvalid: OpenAPIHonoOptions<EdgeEnv>['defaultHook'] = (result) => {
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new BadRequestError(`invalid_${result.target}`, `${where}${issue?.message ?? 'invalid'}`, {
      cause: result.error,
    });
  }
};

/** The one model cache an app serves from: what every entry shares, built with the app's own knobs. */
function modelCacheOf(deps: EdgeAppDeps, config: EdgeAppConfig, logger: EdgeLogger): ModelCache {
  return createModelCache({
    store: deps.store,
    backbone: deps.backbone,
    ...(deps.backboneById ? { backboneById: deps.backboneById } : {}),
    textBackbone: deps.textBackbone ?? ((id) => readTextBackbone(deps.store, id)),
    pointerTtlSeconds: config.pointerTtlSeconds,
    settingsTtlSeconds: config.settingsTtlSeconds,
    headCacheSize: config.headCacheSize,
    clock: config.clock,
    logger,
  });
}

export interface EdgeAppParts {
  app: EdgeApp;
  models: ModelCache;
  /** Review writes in flight: an entry whose runtime freezes after the response settles them first. */
  reviews: ReviewRecorder;
}

/**
 * Creates the edge app, the model cache it serves from and its review recorder: prediction, model info, health,
 * readiness and the OpenAPI document. Runtime-neutral: the entries (Lambda@Edge, Function URL, Node) only wire a
 * store and config into it.
 */
export function createEdgeApp(deps: EdgeAppDeps): EdgeAppParts {
  const config: EdgeAppConfig = { ...DEFAULT_EDGE_CONFIG, ...deps.config };
  const logger = deps.logger ?? silentLogger;
  const { store } = deps;
  const models = deps.models ?? modelCacheOf(deps, config, logger);
  const authorize = createAuthGate({
    store,
    requireKeys: config.requireKeys,
    ttlMs: config.pointerTtlSeconds * 1000,
    clock: config.clock,
  });
  if (!config.requireKeys) {
    logger.warn('API keys are not required: anyone who can reach this endpoint can call every project');
  }
  const gate = createPredictGate({ maxConcurrent: config.maxConcurrent, maxQueue: config.maxQueue });

  const app = new OpenAPIHono<EdgeEnv>({ defaultHook: rejectInvalid });
  app.onError((err, c) => renderError(err, c, logger));
  app.notFound((c) =>
    renderError(new NotFoundError('not_found', `there is no route ${c.req.method} ${c.req.path}`), c, logger),
  );
  app.use('*', async (c, next) => {
    c.set('startedAt', performance.now());
    c.header('cache-control', 'no-store');
    await next();
  });
  const readBody = (batch: boolean) =>
    bodyReader({
      batch,
      maxBodyBytes: config.maxBodyBytes,
      hint: config.bodyLimitHint,
      isBodyTruncated: deps.isBodyTruncated,
    });
  const predict = createPredictor({ models, gate, maxPixels: config.maxPixels });
  const reviews = createReviewRecorder({
    store,
    logger,
    clock: config.clock,
    random: config.random,
    maxPerMinute: config.reviewMaxPerMinute,
    maxBytes: config.reviewMaxBytes,
  });
  const predictTexts = createTextPredictor({ models, gate });
  registerPredictRoutes(app, { authorize, readBody, predict, predictTexts, review: reviews });
  registerModelRoute(app, { authorize, models });
  registerHealthRoutes(app, { models, store });
  registerOpenApiDocument(app);
  return { app, models, reviews };
}

/** The edge app over a new model cache (or `deps.models`); see createEdgeApp. */
export function createApp(deps: EdgeAppDeps): EdgeApp {
  return createEdgeApp(deps).app;
}

/** An app that answers every request with `error`, rendered like any other; for entries that cannot start. */
export function createErrorApp(error: HttpError, logger: EdgeLogger = silentLogger): OpenAPIHono {
  const app = new OpenAPIHono();
  app.onError((err, c) => renderError(err, c, logger));
  app.all('*', () => {
    throw error;
  });
  return app;
}
