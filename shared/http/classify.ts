import type { Backbone } from '../backbone/index.js';
import { decodeImage, ImageError, type ImageFormat, mirrorRows, type ResizePolicy } from '../image/index.js';
import { servesFlipped } from '../models/index.js';
import { ModalityMismatchHttpError } from './http-errors.js';
import type { ModelCache, ModelLease } from './model-cache.js';
import type { PredictGate } from './predict-gate.js';

export interface Prediction {
  label: string;
  score: number;
}

export interface Classified {
  /** Per image: the head's probability row index and the image's format, or the reason it could not be decoded. */
  rows: ({ row: number; format: ImageFormat } | { error: ImageError })[];
  probs: Float32Array;
  /** Per decoded row, the version's outlier score; null when the version has no detector. */
  outlierScores: Float32Array | null;
  timings: { decode: number; backbone: number; head: number };
  /** Whether each photo's probabilities are the mean of the photo's and its mirror's (the version's `serving.flip`). */
  flip: boolean;
}

/** Classifies images with a project's current model, inside the gate; the lease is released when done. */
export type Predictor = (
  project: string,
  images: Uint8Array[],
) => Promise<{ lease: ModelLease; out: Classified }>;

/** Probabilities of one image ranked best first, at most `topK`, none under `minScore`. */
export function rank(
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

/** The lease's image backbone; a text version is refused, naming what the project takes. */
export function imageBackboneOf(lease: ModelLease): Backbone {
  if (lease.backbone) return lease.backbone;
  throw new ModalityMismatchHttpError(
    `project '${lease.project}' is a text project: send the text as the body with Content-Type text/plain, or JSON {"text": "..."} or {"texts": ["...", ...]}, not an image`,
  );
}

/** Decodes each image, or keeps why it cannot be; any other failure fails the request. */
function decodeAll(images: Uint8Array[], backbone: Backbone, maxPixels: number) {
  const options = {
    size: backbone.inputSize,
    maxPixels,
    policy: backbone.manifest.preprocessing.resize as ResizePolicy,
  };
  return Promise.all(
    images.map((bytes) =>
      decodeImage(bytes, options).then(
        (d) => d,
        (err: unknown) => {
          if (err instanceof ImageError) return err;
          throw err;
        },
      ),
    ),
  );
}

/** Each pair of rows (a photo, then its mirror) of `probs` averaged into one row. */
function averagePairs(probs: Float32Array, k: number): Float32Array {
  const out = new Float32Array(probs.length / 2);
  for (let r = 0; r < out.length / k; r++) {
    for (let j = 0; j < k; j++) out[r * k + j] = (probs[2 * r * k + j]! + probs[(2 * r + 1) * k + j]!) / 2;
  }
  return out;
}

/**
 * The head's probabilities of each photo. With `flip`, every photo runs with its mirror in the same backbone
 * batch and the two probability rows are averaged: mirrored pixels, not mirrored features, so a fine-tuned top
 * sees a real mirrored activation, and averaging probabilities (not features) works for every head.
 */
async function run(lease: ModelLease, backbone: Backbone, pixels: Uint8Array[], flip: boolean) {
  const { head } = lease;
  const inputs = flip ? pixels.flatMap((p) => [p, mirrorRows(p, backbone.inputSize)]) : pixels;
  const t0 = performance.now();
  const features = await backbone.extract(inputs);
  const t1 = performance.now();
  const dim = backbone.featureDim;
  const flat = features.length === 1 ? features[0]! : new Float32Array(features.length * dim);
  if (features.length > 1) for (const [i, f] of features.entries()) flat.set(f, i * dim);
  const raw = head.predict(flat, features.length);
  const probs = flip ? averagePairs(raw, head.labels.length) : raw;
  // A flipped photo's score is the mean of its two views', as its probabilities are.
  const scores = lease.outlier ? lease.outlier.score(flat, features.length, raw) : null;
  const outlierScores = scores && flip ? averagePairs(scores, 1) : scores;
  return { probs, outlierScores, backbone: t1 - t0, head: performance.now() - t1 };
}

async function classify(lease: ModelLease, images: Uint8Array[], maxPixels: number): Promise<Classified> {
  const backbone = imageBackboneOf(lease);
  const flip = servesFlipped(lease.manifest);
  const t0 = performance.now();
  const decoded = await decodeAll(images, backbone, maxPixels);
  const decode = performance.now() - t0;
  const pixels: Uint8Array[] = [];
  const rows = decoded.map((d) => {
    if (d instanceof ImageError) return { error: d };
    pixels.push(d.data);
    return { row: pixels.length - 1, format: d.format };
  });
  const none = lease.outlier ? new Float32Array(0) : null;
  const out =
    pixels.length > 0
      ? await run(lease, backbone, pixels, flip)
      : { probs: new Float32Array(0), outlierScores: none, backbone: 0, head: 0 };
  const timings = { decode, backbone: out.backbone, head: out.head };
  return { rows, probs: out.probs, outlierScores: out.outlierScores, flip, timings };
}

export function createPredictor(options: {
  models: ModelCache;
  gate: PredictGate;
  maxPixels: number;
}): Predictor {
  return async (project, images) => {
    const lease = await options.models.acquire(project);
    try {
      const out = await options.gate.run(() => classify(lease, images, options.maxPixels));
      return { lease, out };
    } finally {
      lease.release();
    }
  };
}
