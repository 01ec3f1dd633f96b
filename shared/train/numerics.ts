import { InvalidHeadError } from './train-errors.js';

/**
 * The numerics head training and fine-tuning share: seeded shuffles, feature standardization (and folding it into
 * a first layer), class weights and early stopping. One copy each, so the two training modes cannot drift apart.
 */

/** Small, fast, seedable PRNG (mulberry32) so shuffles are reproducible without global state. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fisher-Yates shuffle of `items` in place, drawing exactly one `rng()` per position from the last down to the
 * second: callers that draw more numbers from the same generator (dropout seeds) depend on that count.
 */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export interface Standardization {
  mean: Float32Array;
  std: Float32Array;
}

/**
 * Per-feature mean and standard deviation over `rows` of row-major `features`. A feature whose spread is below
 * 1e-6 of its magnitude is constant up to float32 rounding and gets std 1 (as scikit-learn's scaler does), so it
 * is centred but not blown up.
 */
export function standardize(features: Float32Array, dim: number, rows: readonly number[]): Standardization {
  const sum = new Float64Array(dim);
  const sumSq = new Float64Array(dim);
  for (const r of rows) {
    const base = r * dim;
    for (let j = 0; j < dim; j++) sum[j]! += features[base + j]!;
  }
  const mean = new Float64Array(dim);
  for (let j = 0; j < dim; j++) mean[j] = sum[j]! / rows.length;
  // Two passes: the one-pass formula loses everything to cancellation when |mean| >> std.
  for (const r of rows) {
    const base = r * dim;
    for (let j = 0; j < dim; j++) {
      const d = features[base + j]! - mean[j]!;
      sumSq[j]! += d * d;
    }
  }
  const std = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    const s = Math.sqrt(sumSq[j]! / rows.length);
    std[j] = s > 1e-6 * Math.max(1, Math.abs(mean[j]!)) ? s : 1;
  }
  return { mean: Float32Array.from(mean), std };
}

/** A dense layer's weights: kernel row-major [in, out] and bias [out]. */
export interface DenseLayer {
  kernel: Float32Array;
  bias: Float32Array;
}

function layerShape(
  kernel: Float32Array,
  bias: Float32Array,
  standardization: Standardization,
): Standardization & { inDim: number; outDim: number } {
  const { mean, std } = standardization;
  const inDim = mean.length;
  const outDim = bias.length;
  if (kernel.length !== inDim * outDim || std.length !== inDim) {
    throw new InvalidHeadError(`kernel of ${kernel.length} values does not match ${inDim} x ${outDim}`);
  }
  return { mean, std, inDim, outDim };
}

/**
 * Folds `(x - mean) / std` into a kernel [in, out] and bias: W' = W / std (per input row) and
 * b' = b - sum_j (mean_j / std_j) W_j. Computed in float64, so the folded layer agrees with the unfolded one to
 * float32 rounding of the matmul; that rounding grows with |mean| / std (the folded form adds up terms of that
 * size which cancel), which stays small for pooled backbone activations.
 */
export function foldStandardization(
  kernel: Float32Array,
  bias: Float32Array,
  standardization: Standardization,
): DenseLayer {
  const { mean, std, inDim, outDim } = layerShape(kernel, bias, standardization);
  const folded = new Float32Array(kernel.length);
  const shift = new Float64Array(outDim);
  for (let j = 0; j < inDim; j++) {
    const inv = 1 / std[j]!;
    const m = mean[j]! * inv;
    for (let c = 0; c < outDim; c++) {
      const w = kernel[j * outDim + c]!;
      folded[j * outDim + c] = w * inv;
      shift[c]! += m * w;
    }
  }
  const foldedBias = new Float32Array(outDim);
  for (let c = 0; c < outDim; c++) foldedBias[c] = bias[c]! - shift[c]!;
  return { kernel: folded, bias: foldedBias };
}

/**
 * The inverse of `foldStandardization`: re-expresses a layer that takes raw features in `standardization`'s
 * coordinates, W = W' * std and b = b' + mean . W' (in float64). Exact whatever standardization W' was folded with.
 */
export function unfoldStandardization(layer: DenseLayer, standardization: Standardization): DenseLayer {
  const { kernel, bias } = layer;
  const { mean, std, inDim, outDim } = layerShape(kernel, bias, standardization);
  const unfolded = new Float32Array(kernel.length);
  const b = Float64Array.from(bias);
  for (let j = 0; j < inDim; j++) {
    for (let c = 0; c < outDim; c++) {
      const v = kernel[j * outDim + c]!;
      unfolded[j * outDim + c] = v * std[j]!;
      b[c]! += mean[j]! * v;
    }
  }
  return { kernel: unfolded, bias: Float32Array.from(b) };
}

/** Examples per label among `rows` (all examples when omitted). */
export function labelCounts(y: ArrayLike<number>, k: number, rows?: readonly number[]): number[] {
  const counts = new Array<number>(k).fill(0);
  if (rows) for (const i of rows) counts[y[i]!]!++;
  else for (let i = 0; i < y.length; i++) counts[y[i]!]!++;
  return counts;
}

export const CLASS_WEIGHTINGS = ['balanced', 'sqrt', 'none'] as const;
export type ClassWeighting = (typeof CLASS_WEIGHTINGS)[number];

/**
 * Loss weight per label. 'balanced' weighs each label by n / (labels * n_label), scikit-learn's
 * `class_weight='balanced'`, so every label carries the same total weight; 'sqrt' takes the square root of
 * that, halfway on a log scale between balanced and none; a label without examples gets 1.
 */
export function classWeights(counts: readonly number[], weighting: ClassWeighting): Float32Array {
  const k = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  return Float32Array.from(counts, (c) => {
    if (weighting === 'none' || c === 0) return 1;
    const balanced = total / (k * c);
    return weighting === 'sqrt' ? Math.sqrt(balanced) : balanced;
  });
}

/**
 * The relative tolerance of early stopping: a validation loss counts as progress only when it is below the best
 * so far by more than this share of max(1, |best|). A validation loss is a float32 sum over up to thousands of
 * examples, whose rounding is of the order of 1e-7 * sqrt(terms), a few 1e-6 at most: 1e-5 is safely above that
 * noise and still far below the smallest per-step progress worth waiting for. The floor of 1 keeps it from
 * vanishing as a loss approaches zero. Head training's L-BFGS takes steps whose validation gains are often only
 * 1e-5..1e-4, so a coarser rule would stop it early and change its heads.
 */
export const IMPROVEMENT_TOLERANCE = 1e-5;

/** Whether `loss` is real progress over `best` under `IMPROVEMENT_TOLERANCE`; anything beats no best at all. */
export function isSignificantImprovement(loss: number, best: number): boolean {
  if (best === Number.POSITIVE_INFINITY) return loss < best;
  return loss < best - IMPROVEMENT_TOLERANCE * Math.max(1, Math.abs(best));
}

/**
 * Tracks validation losses and says when to stop: after `patience` records in a row without significant
 * progress. The best loss is kept whenever it is lower at all (the caller keeps a copy of that state); only the
 * patience counter needs the improvement to be significant, so float noise cannot keep training alive.
 */
export interface EarlyStopping {
  /** Records one validation loss; true when it is the lowest so far (the caller should keep its state). */
  record(loss: number, epoch: number): boolean;
  readonly best: number;
  readonly bestEpoch: number;
  /** True once `patience` records in a row made no significant progress. */
  readonly exhausted: boolean;
}

class PatienceStopping implements EarlyStopping {
  best = Number.POSITIVE_INFINITY;
  bestEpoch = 0;
  private sinceImprovement = 0;

  constructor(private readonly patience: number) {}

  record(loss: number, epoch: number): boolean {
    const significant = isSignificantImprovement(loss, this.best);
    const better = loss < this.best;
    if (better) {
      this.best = loss;
      this.bestEpoch = epoch;
    }
    this.sinceImprovement = significant ? 0 : this.sinceImprovement + 1;
    return better;
  }

  get exhausted(): boolean {
    return this.sinceImprovement >= this.patience;
  }
}

export function createEarlyStopping(options: { patience: number }): EarlyStopping {
  return new PatienceStopping(options.patience);
}
