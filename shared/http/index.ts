export {
  createApp,
  createEdgeApp,
  createErrorApp,
  DEFAULT_EDGE_CONFIG,
  type EdgeApp,
  type EdgeAppConfig,
  type EdgeAppDeps,
  type EdgeAppParts,
} from './app.js';
export {
  type BakedEdgeConfig,
  type EdgeRuntimeConfig,
  envEdgeConfig,
  LAMBDA_EDGE_MAX_BODY_BYTES,
  lambdaEdgeConfig,
  localStoreRoot,
  ORIGIN_HEADER_BUCKET,
  ORIGIN_HEADER_REGION,
  type StoreConfig,
} from './edge-config.js';
export {
  createJsonLogger,
  describeError,
  type EdgeLogger,
  type LogLevel,
  silentLogger,
} from './edge-logger.js';
export {
  createEdgeRuntime,
  type EdgeRuntime,
  type EdgeRuntimeOverrides,
  storeBackboneLoader,
  storeBackboneProvider,
} from './edge-runtime.js';
export {
  BadRequestError,
  ForbiddenError,
  HttpError,
  ModalityMismatchHttpError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnauthorizedError,
  UnprocessableImageError,
  UnprocessableTextError,
  UnsupportedMediaTypeError,
} from './http-errors.js';
export {
  type BackboneByIdProvider,
  type BackboneProvider,
  createModelCache,
  type ModelCache,
  type ModelCacheOptions,
  type ModelLease,
  type TextBackboneProvider,
} from './model-cache.js';
export {
  createReviewRecorder,
  type ReviewCandidate,
  type ReviewRecorder,
  type ReviewRecorderStats,
  reviewReason,
} from './review-recorder.js';
