import { decodeImage, ImageError, type ResizePolicy } from '../image/index.js';
import type { ModelCache, ModelLease } from './model-cache.js';
import type { PredictGate } from './predict-gate.js';

export interface Prediction {
  label: string;
  score: number;
}

export interface Classified {
  /** Per image: the head's probability row index, or the reason it could not be decoded. */
  rows: ({ row: number } | { error: ImageError })[];
  probs: Float32Array;
  /** Per decoded row, the version's outlier score; null when the version has no detector. */
  outlierScores: Float32Array | null;
  timings: { decode: number; backbone: number; head: number };
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

/** Decodes each image, or keeps why it cannot be; any other failure fails the request. */
function decodeAll(images: Uint8Array[], lease: ModelLease, maxPixels: number) {
  const { backbone } = lease;
  const options = {
    size: backbone.inputSize,
    maxPixels,
    policy: backbone.manifest.preprocessing.resize as ResizePolicy,
  };
  return Promise.all(
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
}

async function classify(lease: ModelLease, images: Uint8Array[], maxPixels: number): Promise<Classified> {
  const { backbone, head } = lease;
  const t0 = performance.now();
  const decoded = await decodeAll(images, lease, maxPixels);
  const t1 = performance.now();
  const pixels: Uint8Array[] = [];
  const rows = decoded.map((d) => {
    if (d instanceof ImageError) return { error: d };
    pixels.push(d);
    return { row: pixels.length - 1 };
  });
  let probs: Float32Array = new Float32Array(0);
  let outlierScores: Float32Array | null = lease.outlier ? new Float32Array(0) : null;
  let t2 = t1;
  if (pixels.length > 0) {
    const features = await backbone.extract(pixels);
    t2 = performance.now();
    const dim = backbone.featureDim;
    const flat = features.length === 1 ? features[0]! : new Float32Array(features.length * dim);
    if (features.length > 1) for (const [i, f] of features.entries()) flat.set(f, i * dim);
    probs = head.predict(flat, features.length);
    outlierScores = lease.outlier ? lease.outlier.score(flat, features.length) : null;
  }
  const t3 = performance.now();
  return { rows, probs, outlierScores, timings: { decode: t1 - t0, backbone: t2 - t1, head: t3 - t2 } };
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
