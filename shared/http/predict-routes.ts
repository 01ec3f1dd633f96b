import type { RouteHandler } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { batchPredictRoute, predictRoute } from './api-schemas.js';
import { type Classified, type Predictor, rank } from './classify.js';
import { type TextPredictor, textOfBody } from './classify-text.js';
import type { EdgeApp, EdgeEnv } from './edge-env.js';
import { BadRequestError, UnprocessableImageError } from './http-errors.js';
import type { ModelLease } from './model-cache.js';
import { BATCH_HINT, isJson, isPlainText, mediaTypeOf, RAW_HINT } from './read-body.js';
import type { ReviewRecorder } from './review-recorder.js';

export interface PredictRouteDeps {
  authorize: MiddlewareHandler<EdgeEnv>;
  /** The body reader for a single-image (`false`) or a batch (`true`) route. */
  readBody: (batch: boolean) => MiddlewareHandler<EdgeEnv>;
  predict: Predictor;
  predictTexts: TextPredictor;
  /** Offered every decoded photo with its answer; keeps those the project's review settings ask for. */
  review: ReviewRecorder;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** What answering takes of a classification, an image's or a text's. */
type Scored = Pick<Classified, 'probs' | 'outlierScores' | 'flip' | 'mirrored' | 'timings'>;

/** The model block of a response: the version, its backbone, which photos it flip-averages, its outlier threshold. */
function modelRef(lease: ModelLease, out: Scored) {
  return {
    version: lease.version,
    backbone: lease.manifest.backbone.id,
    flip: out.flip.mirror !== 'none',
    flipBelow: out.flip.mirror === 'unsure' ? out.flip.below : null,
    outlierThreshold: lease.outlier?.threshold ?? null,
  };
}

/** One image's ranked labels and what the outlier detector says of it; rejectUnknown empties an unknown's list. */
function answer(
  out: Scored,
  row: number,
  lease: ModelLease,
  q: { topK: number; minScore: number; rejectUnknown?: boolean | undefined },
) {
  const { unknown, outlierScore } = outlierOf(out, row, lease);
  const reject = unknown === true && (q.rejectUnknown ?? lease.rejectUnknown);
  return {
    predictions: reject ? [] : rank(out.probs, row, lease.head.labels, q.topK, q.minScore),
    mirrored: out.mirrored[row] ?? false,
    unknown,
    outlierScore,
  };
}

/** What the version's outlier detector says of one image; null when it has none. */
function outlierOf(out: Scored, row: number, lease: ModelLease) {
  const score = out.outlierScores ? out.outlierScores[row]! : null;
  const threshold = lease.outlier?.threshold ?? null;
  return { unknown: score === null || threshold === null ? null : score > threshold, outlierScore: score };
}

/**
 * Offers each decoded photo of a request to the review queue, with the version's top label over all labels
 * whatever the query asked to see. Starts no work the response waits for.
 */
function offerForReview(
  review: ReviewRecorder,
  input: { project: string; lease: ModelLease; out: Classified; images: Uint8Array[] },
): void {
  const { lease, out } = input;
  if (!lease.review.enabled) return;
  for (const [i, r] of out.rows.entries()) {
    if ('error' in r) continue;
    const top = rank(out.probs, r.row, lease.head.labels, 1, 0)[0];
    if (!top) continue;
    review.offer({
      project: input.project,
      version: lease.version,
      settings: lease.review,
      body: input.images[i]!,
      format: r.format,
      top,
      ...outlierOf(out, r.row, lease),
    });
  }
}

/** Offers each text of a request to the review queue, as photos are offered (format `txt`, the text kept too). */
function offerTextsForReview(
  review: ReviewRecorder,
  input: { project: string; lease: ModelLease; out: Scored; texts: string[] },
): void {
  const { lease, out } = input;
  if (!lease.review.enabled) return;
  const encoder = new TextEncoder();
  for (const [i, text] of input.texts.entries()) {
    const top = rank(out.probs, i, lease.head.labels, 1, 0)[0];
    if (!top) continue;
    review.offer({
      project: input.project,
      version: lease.version,
      settings: lease.review,
      body: encoder.encode(text),
      format: 'txt',
      text,
      top,
      ...outlierOf(out, i, lease),
    });
  }
}

function timingsMs(c: Context<EdgeEnv>, t: Scored['timings']) {
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

type Query = { topK: number; minScore: number; rejectUnknown?: boolean | undefined };
type JsonBody = { image?: string | undefined; text?: string | undefined; texts?: string[] | undefined };

/** A text project's answer: one text as one image is answered, `texts` as a batch is (one result each). */
async function answerTexts(
  c: Context<EdgeEnv>,
  input: { deps: PredictRouteDeps; project: string; query: Query; texts: string[]; batch: boolean },
) {
  if (input.batch) return answerTextBatch(c, input);
  const { project, query, texts } = input;
  const { lease, out } = await input.deps.predictTexts(project, texts);
  offerTextsForReview(input.deps.review, { project, lease, out, texts });
  const model = modelRef(lease, out);
  return c.json(
    { project, model, ...answer(out, 0, lease, query), timingsMs: timingsMs(c, out.timings) },
    200,
  );
}

async function answerTextBatch(
  c: Context<EdgeEnv>,
  input: { deps: PredictRouteDeps; project: string; query: Query; texts: string[] },
) {
  const { project, query, texts } = input;
  const { lease, out } = await input.deps.predictTexts(project, texts);
  offerTextsForReview(input.deps.review, { project, lease, out, texts });
  const results = input.texts.map((_, index) => ({ index, ...answer(out, index, lease, query) }));
  return c.json({ project, model: modelRef(lease, out), results, timingsMs: timingsMs(c, out.timings) }, 200);
}

/** The texts of a text request (text/plain, JSON "text" or "texts"), or undefined when it sends an image. */
function textsOf(input: {
  mediaType: string;
  body: Uint8Array;
  json: JsonBody | undefined;
}): { texts: string[]; batch: boolean } | undefined {
  const { json } = input;
  if (isPlainText(input.mediaType)) return { texts: [textOfBody(input.body)], batch: false };
  if (!json) return undefined;
  if ([json.image, json.text, json.texts].filter((v) => v !== undefined).length > 1) {
    throw new BadRequestError(
      'ambiguous_body',
      'the JSON body has more than one of "image", "text" and "texts": send exactly one',
    );
  }
  if (json.text !== undefined) return { texts: [json.text], batch: false };
  if (json.texts !== undefined) return { texts: json.texts, batch: true };
  return undefined;
}

const predictOne =
  (deps: PredictRouteDeps): RouteHandler<typeof predictRoute, EdgeEnv> =>
  async (c) => {
    const { predict, review } = deps;
    const { project } = c.req.valid('param');
    const query = c.req.valid('query');
    const mediaType = mediaTypeOf(c.req.header('content-type'));
    const json = isJson(mediaType) ? (c.req.valid('json') as JsonBody) : undefined;
    const asText = textsOf({ mediaType, body: c.get('body'), json });
    if (asText) return answerTexts(c, { deps, project, query, ...asText });
    let image: Uint8Array;
    if (json) {
      if (!json.image)
        throw new BadRequestError(
          'missing_image',
          `no "image" in the JSON body: ${RAW_HINT} (or, for a text project, {"text": "..."})`,
        );
      image = fromBase64(json.image);
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
    offerForReview(review, { project, lease, out, images: [image] });
    return c.json(
      {
        project,
        model: modelRef(lease, out),
        ...answer(out, first.row, lease, query),
        timingsMs: timingsMs(c, out.timings),
      },
      200,
    );
  };

const predictBatch =
  (deps: PredictRouteDeps): RouteHandler<typeof batchPredictRoute, EdgeEnv> =>
  async (c) => {
    const { predict, review } = deps;
    const { project } = c.req.valid('param');
    const query = c.req.valid('query');
    let images: Uint8Array[];
    if (isJson(mediaTypeOf(c.req.header('content-type')))) {
      const body = c.req.valid('json') as { images?: string[]; texts?: string[] };
      if (body.texts) return answerTextBatch(c, { deps, project, query, texts: body.texts });
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
    offerForReview(review, { project, lease, out, images });
    return c.json(
      {
        project,
        model: modelRef(lease, out),
        results: out.rows.map((r, index) =>
          'error' in r
            ? { index, error: { code: r.error.code, message: r.error.message } }
            : { index, ...answer(out, r.row, lease, query) },
        ),
        timingsMs: timingsMs(c, out.timings),
      },
      200,
    );
  };

/** `POST /v1/projects/{project}/predict` and `.../predict/batch`: authorized, then the body read within its limit. */
export function registerPredictRoutes(app: EdgeApp, deps: PredictRouteDeps): void {
  app.on('POST', predictRoute.getRoutingPath(), deps.authorize, deps.readBody(false));
  app.on('POST', batchPredictRoute.getRoutingPath(), deps.authorize, deps.readBody(true));
  app.openapi(predictRoute, predictOne(deps));
  app.openapi(batchPredictRoute, predictBatch(deps));
}
