import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { createKeyVerifier, type KeyVerifier } from '../auth/index.js';
import { DEFAULT_MAX_PIXELS, decodeImage, ImageError, type ResizePolicy } from '../image/index.js';
import { layout } from '../models/index.js';
import type { ObjectStore } from '../store/index.js';
import {
  batchPredictRoute,
  healthRoute,
  MAX_BATCH_IMAGES,
  modelRoute,
  ProjectParamsSchema,
  predictRoute,
  readyRoute,
} from './api-schemas.js';
import { describeError, type EdgeLogger, silentLogger } from './edge-logger.js';
import {
  BadRequestError,
  ForbiddenError,
  type HttpError,
  NotFoundError,
  ServiceUnavailableError,
  toHttpError,
  UnauthorizedError,
  UnprocessableImageError,
  UnsupportedMediaTypeError,
} from './http-errors.js';
import {
  type BackboneByIdProvider,
  type BackboneProvider,
  createModelCache,
  type ModelCache,
  type ModelLease,
} from './model-cache.js';
import { createPredictGate } from './predict-gate.js';
import { readBodyWithin, truncatedBody } from './read-body.js';

export interface EdgeAppConfig {
  /** Request bodies over this are refused with 413. Default 6 MB (Lambda's own request limit). */
  maxBodyBytes: number;
  /** How often a project's pointer is re-checked for a new version. Default 30 s. */
  pointerTtlSeconds: number;
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
}

export const DEFAULT_EDGE_CONFIG: EdgeAppConfig = {
  maxBodyBytes: 6 * 1024 * 1024,
  pointerTtlSeconds: 30,
  headCacheSize: 32,
  requireKeys: true,
  maxPixels: DEFAULT_MAX_PIXELS,
  maxConcurrent: 2,
  maxQueue: 64,
  clock: Date.now,
  bodyLimitHint:
    'the model sees 224x224 pixels, so downscaling photos to about 512 px on the long side before sending loses nothing',
};

export interface EdgeAppDeps {
  store: ObjectStore;
  /** Loads the backbone this instance serves (once; see storeBackboneProvider). */
  backbone: BackboneProvider;
  /** Loads other backbones by id: the trunks fine-tuned versions run on (see storeBackboneLoader). */
  backboneById?: BackboneByIdProvider;
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

type EdgeEnv = { Variables: { body: Uint8Array; startedAt: number } };

/** The edge Hono app; `app.fetch` and `app.request` are what hosts and tests call. */
export type EdgeApp = OpenAPIHono<EdgeEnv>;

interface Prediction {
  label: string;
  score: number;
}

const RAW_HINT =
  'send the image as the body with Content-Type image/jpeg, image/png or image/webp, as multipart/form-data with a file field "image", or as JSON {"image": "<base64>"}';
const BATCH_HINT = `send multipart/form-data with the file field "image" repeated (at most ${MAX_BATCH_IMAGES}), or JSON {"images": ["<base64>", ...]}`;

function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

const isJson = (m: string) => /^application\/([\w.-]+\+)?json$/.test(m);
const isRawImage = (m: string) => m.startsWith('image/') || m === 'application/octet-stream';

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

/** Probabilities of one image ranked best first, at most `topK`, none under `minScore`. */
function rank(
  probs: Float32Array,
  row: number,
  labels: readonly string[],
  topK: number,
  minScore: number,
): Prediction[] {
  const k = labels.length;
  const base = row * k;
  const order = Array.from({ length: k }, (_, i) => i).sort(
    (a, b) => probs[base + b]! - probs[base + a]! || a - b,
  );
  const out: Prediction[] = [];
  for (const i of order) {
    const score = probs[base + i]!;
    if (out.length >= topK || score < minScore) break;
    out.push({ label: labels[i]!, score });
  }
  return out;
}

interface Classified {
  /** Per image: the head's probability row index, or the reason it could not be decoded. */
  rows: ({ row: number } | { error: ImageError })[];
  probs: Float32Array;
  timings: { decode: number; backbone: number; head: number };
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Creates the edge app: prediction, model info, health, readiness and the OpenAPI document over one model
 * cache. Runtime-neutral: the entries (Lambda@Edge, Function URL, Node) only wire a store and config into it.
 */
export function createApp(deps: EdgeAppDeps): EdgeApp {
  const config: EdgeAppConfig = { ...DEFAULT_EDGE_CONFIG, ...deps.config };
  const logger = deps.logger ?? silentLogger;
  const { store } = deps;
  const models =
    deps.models ??
    createModelCache({
      store,
      backbone: deps.backbone,
      ...(deps.backboneById ? { backboneById: deps.backboneById } : {}),
      pointerTtlSeconds: config.pointerTtlSeconds,
      headCacheSize: config.headCacheSize,
      clock: config.clock,
      logger,
    });
  const keys: KeyVerifier | undefined = config.requireKeys
    ? createKeyVerifier(store, { ttlMs: config.pointerTtlSeconds * 1000, clock: config.clock })
    : undefined;
  const gate = createPredictGate({ maxConcurrent: config.maxConcurrent, maxQueue: config.maxQueue });
  if (!config.requireKeys) {
    logger.warn('API keys are not required: anyone who can reach this endpoint can call every project');
  }

  const app = new OpenAPIHono<EdgeEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
        throw new BadRequestError(`invalid_${result.target}`, `${where}${issue?.message ?? 'invalid'}`, {
          cause: result.error,
        });
      }
    },
  });
  app.onError((err, c) => renderError(err, c, logger));
  app.notFound((c) =>
    renderError(new NotFoundError('not_found', `there is no route ${c.req.method} ${c.req.path}`), c, logger),
  );

  app.use('*', async (c, next) => {
    c.set('startedAt', performance.now());
    c.header('cache-control', 'no-store');
    await next();
  });

  // Project name and key are checked before a byte of the body is read.
  const authorize: MiddlewareHandler<EdgeEnv> = async (c, next) => {
    const parsed = ProjectParamsSchema.safeParse({ project: c.req.param('project') });
    if (!parsed.success) {
      throw new BadRequestError('invalid_param', `project: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    if (keys) {
      const { project } = parsed.data;
      const header = c.req.header('authorization');
      if (!header) {
        throw new UnauthorizedError(
          'missing_api_key',
          `project '${project}' needs an API key: send "Authorization: Bearer <key>" (create one with \`npx headstart keys create --project ${project}\`)`,
        );
      }
      const m = /^Bearer +(\S+) *$/i.exec(header);
      if (!m)
        throw new UnauthorizedError(
          'invalid_authorization',
          'the Authorization header must be "Bearer <key>"',
        );
      const verdict = await keys.check(project, m[1]!);
      if (!verdict.valid) {
        throw new ForbiddenError(
          'invalid_api_key',
          `this API key does not give access to project '${project}'`,
        );
      }
    }
    await next();
  };

  const readBody =
    (batch: boolean): MiddlewareHandler<EdgeEnv> =>
    async (c, next) => {
      const hint = config.bodyLimitHint;
      if (deps.isBodyTruncated?.(c)) throw truncatedBody(config.maxBodyBytes, hint);
      const mediaType = mediaTypeOf(c.req.header('content-type'));
      const accepted =
        mediaType === 'multipart/form-data' || isJson(mediaType) || (!batch && isRawImage(mediaType));
      if (!accepted) {
        const empty = !c.req.raw.body || c.req.header('content-length') === '0';
        if (!mediaType && empty)
          throw new BadRequestError(
            'missing_image',
            `no image in the request: ${batch ? BATCH_HINT : RAW_HINT}`,
          );
        throw new UnsupportedMediaTypeError(
          `Content-Type '${mediaType || '(none)'}' is not accepted here: ${batch ? BATCH_HINT : RAW_HINT}`,
        );
      }
      const body = await readBodyWithin(c.req.raw, config.maxBodyBytes, hint);
      // Hono's validators read the body again through this cache, so the limit above also bounds them.
      (c.req.bodyCache as Record<string, unknown>).arrayBuffer = Promise.resolve(body.buffer);
      c.set('body', body);
      await next();
    };

  async function classify(lease: ModelLease, images: Uint8Array[]): Promise<Classified> {
    const { backbone, head } = lease;
    const options = {
      size: backbone.inputSize,
      maxPixels: config.maxPixels,
      policy: backbone.manifest.preprocessing.resize as ResizePolicy,
    };
    const t0 = performance.now();
    const decoded = await Promise.all(
      images.map((bytes) =>
        decodeImage(bytes, options).then(
          (d) => d.data,
          (err: unknown) => {
            if (err instanceof ImageError) return err;
            throw err;
          },
        ),
      ),
    );
    const t1 = performance.now();
    const pixels: Uint8Array[] = [];
    const rows = decoded.map((d) => {
      if (d instanceof ImageError) return { error: d };
      pixels.push(d);
      return { row: pixels.length - 1 };
    });
    let probs: Float32Array = new Float32Array(0);
    let t2 = t1;
    if (pixels.length > 0) {
      const features = await backbone.extract(pixels);
      t2 = performance.now();
      const dim = backbone.featureDim;
      const flat = features.length === 1 ? features[0]! : new Float32Array(features.length * dim);
      if (features.length > 1) for (const [i, f] of features.entries()) flat.set(f, i * dim);
      probs = head.predict(flat, features.length);
    }
    const t3 = performance.now();
    return { rows, probs, timings: { decode: t1 - t0, backbone: t2 - t1, head: t3 - t2 } };
  }

  async function predict(project: string, images: Uint8Array[]) {
    const lease = await models.acquire(project);
    try {
      const out = await gate.run(() => classify(lease, images));
      return { lease, out };
    } finally {
      lease.release();
    }
  }

  function timingsMs(c: Context<EdgeEnv>, t: Classified['timings']) {
    return {
      decode: round(t.decode),
      backbone: round(t.backbone),
      head: round(t.head),
      total: round(performance.now() - c.get('startedAt')),
    };
  }

  async function imageFromFile(file: Blob): Promise<Uint8Array> {
    return new Uint8Array(await file.arrayBuffer());
  }

  function fromBase64(text: string): Uint8Array {
    const b = Buffer.from(text, 'base64');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  const predictPath = predictRoute.getRoutingPath();
  const batchPath = batchPredictRoute.getRoutingPath();
  app.on('POST', predictPath, authorize, readBody(false));
  app.on('POST', batchPath, authorize, readBody(true));
  app.on('GET', modelRoute.getRoutingPath(), authorize);

  app.openapi(predictRoute, async (c) => {
    const { project } = c.req.valid('param');
    const { topK, minScore } = c.req.valid('query');
    const mediaType = mediaTypeOf(c.req.header('content-type'));
    let image: Uint8Array;
    if (isJson(mediaType)) {
      const body = c.req.valid('json') as { image?: string };
      if (!body.image) throw new BadRequestError('missing_image', `no "image" in the JSON body: ${RAW_HINT}`);
      image = fromBase64(body.image);
    } else if (mediaType === 'multipart/form-data') {
      const form = c.req.valid('form') as { image?: Blob };
      if (!form.image)
        throw new BadRequestError('missing_image', `no file field "image" in the form: ${RAW_HINT}`);
      image = await imageFromFile(form.image);
    } else {
      image = c.get('body');
    }
    if (image.length === 0) throw new BadRequestError('missing_image', `the image is empty: ${RAW_HINT}`);
    const { lease, out } = await predict(project, [image]);
    const first = out.rows[0]!;
    if ('error' in first)
      throw new UnprocessableImageError(first.error.code, first.error.message, { cause: first.error });
    return c.json(
      {
        project,
        model: { version: lease.version, backbone: lease.manifest.backbone.id },
        predictions: rank(out.probs, first.row, lease.head.labels, topK, minScore),
        timingsMs: timingsMs(c, out.timings),
      },
      200,
    );
  });

  app.openapi(batchPredictRoute, async (c) => {
    const { project } = c.req.valid('param');
    const { topK, minScore } = c.req.valid('query');
    let images: Uint8Array[];
    if (isJson(mediaTypeOf(c.req.header('content-type')))) {
      const body = c.req.valid('json') as { images?: string[] };
      if (!body.images)
        throw new BadRequestError('missing_image', `no "images" in the JSON body: ${BATCH_HINT}`);
      images = body.images.map(fromBase64);
    } else {
      const form = c.req.valid('form') as { image?: Blob | Blob[] };
      if (!form.image)
        throw new BadRequestError('missing_image', `no file field "image" in the form: ${BATCH_HINT}`);
      images = await Promise.all((Array.isArray(form.image) ? form.image : [form.image]).map(imageFromFile));
    }
    const { lease, out } = await predict(project, images);
    const labels = lease.head.labels;
    return c.json(
      {
        project,
        model: { version: lease.version, backbone: lease.manifest.backbone.id },
        results: out.rows.map((r, index) =>
          'error' in r
            ? { index, error: { code: r.error.code, message: r.error.message } }
            : { index, predictions: rank(out.probs, r.row, labels, topK, minScore) },
        ),
        timingsMs: timingsMs(c, out.timings),
      },
      200,
    );
  });

  app.openapi(modelRoute, async (c) => {
    const { project } = c.req.valid('param');
    const lease = await models.acquire(project);
    lease.release();
    const { manifest } = lease;
    const refused = models.refusedVersion(project);
    return c.json(
      {
        project,
        version: lease.version,
        createdAt: manifest.createdAt,
        labels: manifest.labels,
        metrics: {
          accuracy: manifest.metrics.accuracy,
          macroF1: manifest.metrics.macroF1,
          n: manifest.metrics.n,
        },
        backbone: {
          id: manifest.backbone.id,
          inputSize: manifest.backbone.inputSize,
          featureDim: manifest.backbone.featureDim,
        },
        head: { type: manifest.head.type, format: manifest.head.format },
        ...(refused ? { refusedVersion: refused } : {}),
      },
      200,
    );
  });

  app.openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200));

  app.openapi(readyRoute, async (c) => {
    const [backbone, reachable] = await Promise.allSettled([
      models.backbone(),
      store.head(layout.defaultBackbonePointer),
    ]);
    if (backbone.status === 'rejected' || reachable.status === 'rejected') {
      const problems: string[] = [];
      if (backbone.status === 'rejected')
        problems.push(`backbone not loaded (${messageOf(backbone.reason)})`);
      if (reachable.status === 'rejected')
        problems.push(`store unreachable (${messageOf(reachable.reason)})`);
      throw new ServiceUnavailableError('not_ready', `not ready: ${problems.join('; ')}`, {
        retryAfterSeconds: 2,
      });
    }
    return c.json(
      { status: 'ready' as const, backbone: backbone.value.manifest.id, store: 'reachable' as const },
      200,
    );
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A project API key (`npx headstart keys create --project <project>`).',
  });
  let document: unknown;
  app.get('/openapi.json', (c) => {
    document ??= app.getOpenAPIDocument({
      openapi: '3.0.3',
      info: {
        title: 'Headstart edge API',
        version: '1',
        description:
          'Predictions from a project\'s current model. Errors are `{"error": {"code", "message"}}`.',
      },
    });
    return c.json(document as Record<string, unknown>, 200);
  });

  return app;
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
