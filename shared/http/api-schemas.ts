import { createRoute, z } from '@hono/zod-openapi';
import { PROJECT_PATTERN } from '../dataset/upload-key.js';
import { VERSION_FORMATS } from '../models/index.js';

/**
 * The edge API's schemas and routes. The same objects validate requests (through @hono/zod-openapi's
 * validators) and generate `/openapi.json`, so the document cannot drift from what is enforced.
 */

export const MAX_BATCH_IMAGES = 16;

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'no_model' }),
      message: z.string().openapi({ example: "project 'shoes' has no trained model yet" }),
    }),
  })
  .openapi('Error');

export const ProjectParamsSchema = z.object({
  project: z
    .string()
    .regex(
      PROJECT_PATTERN,
      "project names are 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit",
    )
    .openapi({ param: { name: 'project', in: 'path' }, example: 'clothing' }),
});

export const PredictQuerySchema = z.object({
  topK: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(3)
    .openapi({
      param: { name: 'topK', in: 'query' },
      description: 'Labels returned per image, best first.',
      example: 3,
    }),
  minScore: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0)
    .openapi({
      param: { name: 'minScore', in: 'query' },
      description: 'Leave out labels scoring below this.',
      example: 0.05,
    }),
  rejectUnknown: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true'))
    .openapi({
      param: { name: 'rejectUnknown', in: 'query' },
      description:
        "When true, an image or text the version's outlier detector calls unknown gets an empty `predictions` list. Default: the project's `rejectUnknown` setting (projects/<project>/settings.json), else false.",
      example: 'true',
    }),
});

const base64Image = z
  .string()
  .min(1, 'image is empty')
  .base64('image must be standard base64 (A-Z a-z 0-9 + /, padded with =)')
  .openapi({ description: 'The image file (JPEG, PNG or WebP), base64-encoded.', format: 'byte' });

const isFile = (v: unknown) => v instanceof Blob;
const notAFile = (v: unknown) =>
  v === undefined ? 'no file part "image" in the form' : 'image must be a file part, not a text field';

// Repeated fields arrive as an array: on /predict that is several images, which only /predict/batch takes.
const filePart = z
  .custom<File>(isFile, (v: unknown) => ({
    message: Array.isArray(v)
      ? `/predict takes one image and this form has ${v.length} "image" parts: send several to /v1/projects/{project}/predict/batch (the field "image" repeated, at most ${MAX_BATCH_IMAGES})`
      : notAFile(v),
  }))
  .openapi({ type: 'string', format: 'binary', description: 'The image file (JPEG, PNG or WebP).' });

const batchFileParts = z
  .custom<File | File[]>(
    (v) => (Array.isArray(v) ? v.length <= MAX_BATCH_IMAGES && v.every(isFile) : isFile(v)),
    (v: unknown) => ({
      message:
        Array.isArray(v) && v.length > MAX_BATCH_IMAGES
          ? `at most ${MAX_BATCH_IMAGES} images per batch, got ${v.length}`
          : v === undefined
            ? notAFile(v)
            : 'every "image" part must be a file part, not a text field',
    }),
  )
  .openapi({
    type: 'array',
    items: { type: 'string', format: 'binary' },
    description: `The image files (JPEG, PNG or WebP): repeat the field once per image, at most ${MAX_BATCH_IMAGES}.`,
  });

/** Texts per request at most (a text project's `{"texts": [...]}`). */
export const MAX_BATCH_TEXTS = 100;

export const PredictJsonSchema = z
  .object({
    image: base64Image.optional(),
    text: z.string().optional().openapi({
      description:
        'For a text project: one text to classify, at most 10,000 characters, not empty. The answer has the shape of an image prediction.',
      example: 'when will my new card arrive?',
    }),
    texts: z
      .array(z.string())
      .optional()
      .openapi({
        description: `For a text project: up to ${MAX_BATCH_TEXTS} texts, answered with \`results\` in request order as a batch of images is (more is refused with 422 \`too_many_texts\`).`,
        example: ['when will my new card arrive?', 'I lost my card'],
      }),
  })
  .refine((b) => b.image !== undefined || b.text !== undefined || b.texts !== undefined, {
    message:
      'the JSON body needs "image" (base64, for an image project), or "text" or "texts" (for a text project)',
  })
  .openapi('PredictJson', {
    description:
      'Exactly one of `image` (an image project), `text` or `texts` (a text project). A text project answers `unknown` and `outlierScore` as an image project does (for a text version `outlierScore` is 1 minus the top label score, calibrated at training; null for one trained without a detector).',
  });
export const PredictFormSchema = z.object({ image: filePart }).openapi('PredictForm');
export const BatchJsonSchema = z
  .object({
    images: z.array(base64Image).min(1).max(MAX_BATCH_IMAGES).optional(),
    texts: z
      .array(z.string())
      .optional()
      .openapi({
        description: `For a text project: up to ${MAX_BATCH_TEXTS} texts, one result each in request order (the same as \`{"texts": [...]}\` on \`/predict\`).`,
        example: ['when will my new card arrive?', 'I lost my card'],
      }),
  })
  .refine((b) => (b.images === undefined) !== (b.texts === undefined), {
    message:
      'the JSON body needs exactly one of "images" (base64, an image project) and "texts" (a text project)',
  })
  .openapi('BatchPredictJson');
export const BatchFormSchema = z.object({ image: batchFileParts }).openapi('BatchPredictForm');

const binary = z.string().openapi({ type: 'string', format: 'binary' });

export const PredictionSchema = z.object({
  label: z.string().openapi({ example: 'shoes' }),
  score: z
    .number()
    .openapi({ description: 'Probability; over all labels the scores sum to 1.', example: 0.93 }),
});

export const ModelRefSchema = z.object({
  version: z.string().openapi({ example: 'v20250101T120000123Z-0a1b2c' }),
  backbone: z.string().openapi({ example: 'mnv2-nsfwjs.block_13_depthwise_relu.224.i8c' }),
  flip: z.boolean().openapi({
    description:
      "Whether this version averages a photo's scores with its left-right mirror's (the project's `predictFlip` setting when the version was trained): for every photo, or with `flipBelow` only for photos whose single view's top score is under it. Each result's `mirrored` says whether it was; `timingsMs.backbone` covers both views.",
    example: true,
  }),
  flipBelow: z.number().nullable().openapi({
    description:
      "With `flip`: a photo whose single view gives no label at least this score also runs mirrored: the project's `flipBelow`, or lower where the version would have mirrored more than `maxFlipShare` of its validation photos. null: every photo (flip true) or none (flip false).",
    example: 0.8,
  }),
  outlierThreshold: z.number().nullable().openapi({
    description:
      'An `outlierScore` above this is `unknown`; set at training so 95% of the validation photos (or texts) fall at or below it. null for a version trained without an outlier detector.',
    example: 41.2,
  }),
});

/** What the outlier detector says of one image. */
export const OutlierFieldsSchema = z.object({
  unknown: z.boolean().nullable().openapi({
    description:
      'True when the image (or text) looks unlike every training example (its outlierScore is above model.outlierThreshold): the labels are then a forced guess. null for a version without an outlier detector. Labels and scores are the same either way, unless rejectUnknown empties the list.',
    example: false,
  }),
  outlierScore: z.number().nullable().openapi({
    description:
      'How unusual the image (or text) is for the training examples, higher meaning more unusual; comparable only with model.outlierThreshold of the same version. null without a detector.',
    example: 12.7,
  }),
});

const MirroredSchema = z.boolean().openapi({
  description:
    "True when the photo's mirror also ran and its scores and outlierScore are the mean of both views' (see model.flip). Always false for texts.",
  example: false,
});

export const TimingsSchema = z
  .object({
    decode: z.number(),
    backbone: z.number(),
    head: z.number(),
    total: z
      .number()
      .openapi({ description: 'From the request reaching the app to the response being built.' }),
  })
  .openapi('TimingsMs');

export const PredictResponseSchema = z
  .object({
    project: z.string(),
    model: ModelRefSchema,
    predictions: z.array(PredictionSchema).openapi({
      description:
        'Sorted by score, best first; empty when rejectUnknown is on and the image or text is unknown.',
    }),
    mirrored: MirroredSchema,
    ...OutlierFieldsSchema.shape,
    timingsMs: TimingsSchema,
  })
  .openapi('PredictResponse');

export const BatchItemSchema = z.union([
  z.object({
    index: z.number().int(),
    predictions: z.array(PredictionSchema),
    mirrored: MirroredSchema,
    ...OutlierFieldsSchema.shape,
  }),
  z.object({ index: z.number().int(), error: ErrorSchema.shape.error }),
]);

export const BatchResponseSchema = z
  .object({
    project: z.string(),
    model: ModelRefSchema,
    results: z.array(BatchItemSchema).openapi({
      description:
        'One per image, in request order; an image that cannot be decoded gets an error, the rest are still classified.',
    }),
    timingsMs: TimingsSchema,
  })
  .openapi('BatchPredictResponse');

export const ModelInfoSchema = z
  .object({
    project: z.string(),
    version: z.string(),
    createdAt: z.string(),
    labels: z.array(z.string()).openapi({ description: 'In the head output order.' }),
    metrics: z.object({ accuracy: z.number(), macroF1: z.number(), n: z.number().int() }),
    backbone: z.object({ id: z.string(), inputSize: z.number().int(), featureDim: z.number().int() }),
    head: z.object({
      type: z.string(),
      format: z.enum([VERSION_FORMATS.head, VERSION_FORMATS.finetune]).openapi({
        description: `'${VERSION_FORMATS.head}': a head on the backbone's pooled feature. '${VERSION_FORMATS.finetune}': a fine-tuned top block and classifier on the trunk named by \`backbone\`.`,
      }),
    }),
    refusedVersion: z
      .object({ version: z.string(), code: z.string(), message: z.string() })
      .optional()
      .openapi({ description: 'A newer version this edge would not switch to, and why.' }),
  })
  .openapi('ModelInfo');

export const HealthSchema = z.object({ status: z.literal('ok') });
export const ReadySchema = z.object({
  status: z.literal('ready'),
  backbone: z.string(),
  store: z.literal('reachable'),
});

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: ERROR_TEXT[s] ?? 'Error', content: { 'application/json': { schema: ErrorSchema } } },
    ]),
  );

const ERROR_TEXT: Record<number, string> = {
  400: 'Missing or malformed path, query or body',
  401: 'No API key (send `Authorization: Bearer <key>`)',
  403: 'The API key does not grant access to this project',
  404: 'Unknown project, or no trained model yet',
  413: 'Body over the limit (6 MB by default; 1 MB through Lambda@Edge)',
  415: 'Unsupported Content-Type, or an image sent to a text project (or a text to an image project): `modality_mismatch`',
  422: 'The image cannot be decoded, is not JPEG/PNG/WebP, or has too many pixels; or a text is empty (`empty_text`), over 10,000 characters (`text_too_long`), not UTF-8, or there are over 100 texts (`too_many_texts`)',
  503: 'The model or the store cannot be used right now, or the instance is saturated',
};

const security = [{ Bearer: [] }];

/** The request of both predict routes: the project, the query, and a body in any of `content`'s types. */
const predictRequest = <C extends Record<string, { schema: z.ZodTypeAny }>>(content: C) => ({
  params: ProjectParamsSchema,
  query: PredictQuerySchema,
  body: { content },
});

/** A 200 answered with JSON of `schema`. */
const jsonOk = <S extends z.ZodTypeAny>(description: string, schema: S) => ({
  200: { description, content: { 'application/json': { schema } } },
});

export const predictRoute = createRoute({
  method: 'post',
  path: '/v1/projects/{project}/predict',
  summary: 'Classify one image, or one or more texts',
  description:
    'For an image project the body is the image itself (`Content-Type: image/jpeg`, `image/png` or `image/webp`), `multipart/form-data` with a file field `image`, or JSON `{"image": "<base64>"}`. For a text project it is the text itself (`Content-Type: text/plain`, UTF-8, 1 to 10,000 characters), JSON `{"text": "..."}`, or JSON `{"texts": ["...", ...]}` (at most 100; answered with `results`, one per text, like a batch of images). An image sent to a text project, or a text to an image project, is refused with 415 `modality_mismatch`. Bodies over the limit are refused with 413: 6 MB by default, and 1 MB when the edge runs as Lambda@Edge (CloudFront passes a function at most 1 MB of body). Photos are resized to the backbone input anyway (160 px for the default backbone), so downscaling to ~512 px on the long side before sending loses nothing.',
  security,
  request: predictRequest({
    'image/jpeg': { schema: binary },
    'image/png': { schema: binary },
    'image/webp': { schema: binary },
    'multipart/form-data': { schema: PredictFormSchema },
    'application/json': { schema: PredictJsonSchema },
    'text/plain': {
      schema: z
        .string()
        .openapi({ description: 'For a text project: the text, UTF-8.', example: 'I lost my card' }),
    },
  }),
  responses: {
    200: {
      description: 'Predictions, best first; for JSON `{"texts": [...]}`, one result per text',
      content: { 'application/json': { schema: z.union([PredictResponseSchema, BatchResponseSchema]) } },
    },
    ...errors(400, 401, 403, 404, 413, 415, 422, 503),
  },
});

export const batchPredictRoute = createRoute({
  method: 'post',
  path: '/v1/projects/{project}/predict/batch',
  summary: `Classify up to ${MAX_BATCH_IMAGES} images in one request`,
  description:
    'Multipart with the file field `image` repeated, or JSON `{"images": ["<base64>", ...]}`. The images go through the backbone as one batch. The same body limits as single predictions apply to the whole request. A text project takes JSON `{"texts": ["...", ...]}` (at most 100) and answers one result per text.',
  security,
  request: predictRequest({
    'multipart/form-data': { schema: BatchFormSchema },
    'application/json': { schema: BatchJsonSchema },
  }),
  responses: {
    ...jsonOk('One result per image', BatchResponseSchema),
    ...errors(400, 401, 403, 404, 413, 415, 503),
  },
});

export const modelRoute = createRoute({
  method: 'get',
  path: '/v1/projects/{project}/model',
  summary: "The project's current model",
  security,
  request: { params: ProjectParamsSchema },
  responses: {
    200: {
      description: 'Labels, metrics, backbone and creation time',
      content: { 'application/json': { schema: ModelInfoSchema } },
    },
    ...errors(400, 401, 403, 404, 503),
  },
});

export const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  summary: 'The process is alive',
  responses: { 200: { description: 'Alive', content: { 'application/json': { schema: HealthSchema } } } },
});

export const readyRoute = createRoute({
  method: 'get',
  path: '/readyz',
  summary: 'The backbone is loaded and the store is reachable',
  responses: {
    200: { description: 'Ready to serve', content: { 'application/json': { schema: ReadySchema } } },
    ...errors(503),
  },
});
