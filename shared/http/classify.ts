import type { Backbone } from '../backbone/index.js';
import { decodeImage, ImageError, type ImageFormat, mirrorRows, type ResizePolicy } from '../image/index.js';
import { type FlipPolicy, flipPolicyOf } from '../models/index.js';
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
  /** Which photos the version also runs mirrored (its `serving`). */
  flip: FlipPolicy;
  /** Per decoded row: whether its probabilities and outlier score are the mean of the photo's and its mirror's. */
  mirrored: boolean[];
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

/** The head's probability rows (and detector scores) of a batch of views, and the backbone's time. */
async function score(lease: ModelLease, backbone: Backbone, views: Uint8Array[]) {
  const t0 = performance.now();
  const features = await backbone.extract(views);
  const ms = performance.now() - t0;
  const dim = backbone.featureDim;
  const flat = features.length === 1 ? features[0]! : new Float32Array(features.length * dim);
  if (features.length > 1) for (const [i, f] of features.entries()) flat.set(f, i * dim);
  const probs = lease.head.predict(flat, features.length);
  const outlier = lease.outlier ? lease.outlier.score(flat, features.length, probs) : null;
  return { probs, outlier, ms };
}

/** The photos under the policy's `below` (for 'unsure': the single view's top probability decides). */
function unsureRows(below: number, probs: Float32Array, k: number): number[] {
  return Array.from({ length: probs.length / k }, (_, r) => r).filter(
    (r) => Math.max(...probs.subarray(r * k, (r + 1) * k)) < below,
  );
}

type Scores = Awaited<ReturnType<typeof score>>;

/** Row `r` of `into` becomes the mean of itself and row `j` of `views`, probabilities and outlier score alike. */
function averageInto(into: Scores, views: Scores, rows: { r: number; j: number }, k: number): void {
  const { r, j } = rows;
  for (let c = 0; c < k; c++) into.probs[r * k + c] = (into.probs[r * k + c]! + views.probs[j * k + c]!) / 2;
  if (into.outlier && views.outlier) into.outlier[r] = (into.outlier[r]! + views.outlier[j]!) / 2;
}

/** Every photo and its mirror in one backbone batch: the photos' scores, then the mirrors' (timed as one). */
async function scoreWithMirrors(lease: ModelLease, backbone: Backbone, pixels: Uint8Array[]) {
  const n = pixels.length;
  const k = lease.head.labels.length;
  const mirrors = pixels.map((p) => mirrorRows(p, backbone.inputSize));
  const both = await score(lease, backbone, [...pixels, ...mirrors]);
  const half = (rows: Float32Array, width: number, from: number) =>
    rows.slice(from * width, (from + n) * width);
  const part = (from: number, ms: number): Scores => ({
    probs: half(both.probs, k, from),
    outlier: both.outlier && half(both.outlier, 1, from),
    ms,
  });
  return { plain: part(0, both.ms), views: part(n, 0) };
}

/**
 * The head's probabilities of each photo. Photos the version's flip policy picks also run mirrored and get the
 * mean of both views' probabilities and outlier scores: every photo in the same backbone batch as its mirror
 * ('all'), or, for 'unsure', those whose single view's top score is under `below`, in a second batch. Mirrored
 * pixels, not mirrored features, so a fine-tuned top sees a real mirrored activation; averaging probabilities
 * (not features) works for every head.
 */
async function run(lease: ModelLease, backbone: Backbone, pixels: Uint8Array[]) {
  const k = lease.head.labels.length;
  const policy = flipPolicyOf(lease.manifest);
  const t0 = performance.now();
  let plain: Scores;
  let views: Scores | undefined;
  let picked: number[] = [];
  if (policy.mirror === 'all') {
    ({ plain, views } = await scoreWithMirrors(lease, backbone, pixels));
    picked = pixels.map((_, r) => r);
  } else {
    plain = await score(lease, backbone, pixels);
    if (policy.mirror === 'unsure') picked = unsureRows(policy.below, plain.probs, k);
    if (picked.length > 0) {
      views = await score(
        lease,
        backbone,
        picked.map((r) => mirrorRows(pixels[r]!, backbone.inputSize)),
      );
    }
  }
  const mirrored = new Array<boolean>(pixels.length).fill(false);
  for (const [j, r] of picked.entries()) {
    mirrored[r] = true;
    averageInto(plain, views!, { r, j }, k);
  }
  const backboneMs = plain.ms + (views?.ms ?? 0);
  const head = performance.now() - t0 - backboneMs;
  return { probs: plain.probs, outlierScores: plain.outlier, mirrored, backbone: backboneMs, head };
}

async function classify(lease: ModelLease, images: Uint8Array[], maxPixels: number): Promise<Classified> {
  const backbone = imageBackboneOf(lease);
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
      ? await run(lease, backbone, pixels)
      : { probs: new Float32Array(0), outlierScores: none, mirrored: [], backbone: 0, head: 0 };
  const timings = { decode, backbone: out.backbone, head: out.head };
  const { probs, outlierScores, mirrored } = out;
  return { rows, probs, outlierScores, flip: flipPolicyOf(lease.manifest), mirrored, timings };
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
