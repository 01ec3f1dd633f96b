import { createRng } from './numerics.js';

export interface BlobsOptions {
  /** Examples per label; a number applies to every label. */
  perLabel: number | readonly number[];
  labels: number;
  dim: number;
  /** Distance scale between label centres, in units of the per-feature noise. */
  separation: number;
  seed: number;
  /** Offset and scale applied to every feature, so standardization has something to undo. */
  offset?: number;
  scale?: number;
}

export interface Blobs {
  features: Float32Array;
  dim: number;
  labels: Int32Array;
  labelNames: string[];
  ids: string[];
}

/**
 * Gaussian blobs for tests and benchmarks: each label is an isotropic Gaussian around a random centre. Ids are
 * random 64-digit hex strings standing in for content hashes. Deterministic for a seed.
 */
export function gaussianBlobs(options: BlobsOptions): Blobs {
  const { labels: k, dim, separation, seed } = options;
  const offset = options.offset ?? 0;
  const scale = options.scale ?? 1;
  const rng = createRng(seed);
  const normal = () => {
    // Box-Muller; 1 - u keeps log away from 0.
    const u = 1 - rng();
    const v = rng();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const centres = Array.from({ length: k }, () =>
    Float64Array.from({ length: dim }, () => normal() * separation),
  );
  const counts = Array.from({ length: k }, (_, c) =>
    typeof options.perLabel === 'number' ? options.perLabel : (options.perLabel[c] ?? 0),
  );
  const n = counts.reduce((a, b) => a + b, 0);
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const ids: string[] = [];
  let i = 0;
  // Interleave labels so that any prefix of the data has every label, as with photos arriving over time.
  const remaining = [...counts];
  while (i < n) {
    for (let c = 0; c < k; c++) {
      if (remaining[c]! === 0) continue;
      remaining[c]!--;
      for (let j = 0; j < dim; j++) features[i * dim + j] = (centres[c]![j]! + normal()) * scale + offset;
      labels[i] = c;
      ids.push(
        Array.from({ length: 8 }, () =>
          Math.floor(rng() * 2 ** 32)
            .toString(16)
            .padStart(8, '0'),
        ).join(''),
      );
      i++;
    }
  }
  return { features, dim, labels, labelNames: Array.from({ length: k }, (_, c) => `label-${c}`), ids };
}
