import type { FitOutcome } from './fit.js';
import type { HeadParams } from './head-model.js';
import { createEarlyStopping, createRng, shuffleInPlace } from './numerics.js';

/**
 * Rows of a sparse feature matrix (compressed sparse rows) with labels and loss weights: what the softmax head
 * trains on when features are hashed n-grams (16k columns, a few hundred non-zero per row). A dense copy of
 * 10,000 such rows would be 650 MB and every product 40 times the work.
 */
type SoftmaxParams = Extract<HeadParams, { type: 'softmax' }>;

export interface SparseFitData {
  n: number;
  dim: number;
  k: number;
  /** n + 1 offsets into indices/values. */
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  y: Int32Array;
  w: Float32Array;
}

/**
 * z += x * w[base..base + z.length), four at a time: V8 does not vectorize, and the unrolled loop runs about
 * twice as fast as the plain one on 77 labels (the forward pass is most of a step).
 */
function addScaledRow(z: Float64Array, x: number, w: Float32Array, base: number): void {
  const k = z.length;
  let c = 0;
  let b = base;
  for (; c + 3 < k; c += 4, b += 4) {
    z[c]! += x * w[b]!;
    z[c + 1]! += x * w[b + 1]!;
    z[c + 2]! += x * w[b + 2]!;
    z[c + 3]! += x * w[b + 3]!;
  }
  for (; c < k; c++, b++) z[c]! += x * w[b]!;
}

/** Logits of one row: b + x W, W row-major [dim, k] at theta[0..dim*k), b after it. */
function rowLogits(
  d: Pick<SparseFitData, 'k' | 'indptr' | 'indices' | 'values'>,
  i: number,
  w: Float32Array,
  b: Float32Array,
  z: Float64Array,
): void {
  const { k } = d;
  for (let c = 0; c < k; c++) z[c] = b[c]!;
  for (let p = d.indptr[i]!; p < d.indptr[i + 1]!; p++) addScaledRow(z, d.values[p]!, w, d.indices[p]! * k);
}

/** Turns logits into probabilities in place; returns log-sum-exp. */
function softmaxInPlace(z: Float64Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < z.length; c++) max = Math.max(max, z[c]!);
  let sum = 0;
  for (let c = 0; c < z.length; c++) {
    z[c] = Math.exp(z[c]! - max);
    sum += z[c]!;
  }
  for (let c = 0; c < z.length; c++) z[c]! /= sum;
  return max + Math.log(sum);
}

function weightSum(d: SparseFitData): number {
  let s = 0;
  for (let i = 0; i < d.n; i++) s += d.w[i]!;
  return s;
}

/** Weighted mean cross-entropy of a softmax head on sparse rows. */
function sparseLoss(d: SparseFitData, params: SoftmaxParams): number {
  const z = new Float64Array(d.k);
  let loss = 0;
  for (let i = 0; i < d.n; i++) {
    rowLogits(d, i, params.w, params.b, z);
    const target = z[d.y[i]!]!;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < d.k; c++) max = Math.max(max, z[c]!);
    let sum = 0;
    for (let c = 0; c < d.k; c++) sum += Math.exp(z[c]! - max);
    loss += d.w[i]! * (max + Math.log(sum) - target);
  }
  return loss / weightSum(d);
}

/** Class probabilities (n * k) of a softmax head on sparse rows. */
export function predictSparse(
  params: HeadParams,
  d: Pick<SparseFitData, 'n' | 'k' | 'indptr' | 'indices' | 'values'>,
): Float32Array {
  if (params.type !== 'softmax') throw new TypeError('sparse rows train and predict softmax heads only');
  const { k } = params;
  const z = new Float64Array(k);
  const out = new Float32Array(d.n * k);
  for (let i = 0; i < d.n; i++) {
    rowLogits({ ...d, k }, i, params.w, params.b, z);
    softmaxInPlace(z);
    for (let c = 0; c < k; c++) out[i * k + c] = z[c]!;
  }
  return out;
}

export interface SparseFitOptions {
  l2: number;
  /** AdaGrad's base step: a feature row's step is learningRate / sqrt(delta + its summed squared gradients). */
  learningRate: number;
  maxEpochs: number;
  patience: number;
  seed: number;
  /** Continue from this state (a refit from the split's head) instead of zeros. */
  warmStart?: SparseFitState;
}

/** What a fit ends with, enough to continue it: the weights and AdaGrad's accumulators. */
export interface SparseFitState {
  params: SoftmaxParams;
  rowSquares: Float32Array;
  biasSquares: Float64Array;
}

export interface SparseFitOutcome extends FitOutcome {
  /** The state `params` came from (the best epoch's when validated): where a continuation on more rows starts. */
  state: SparseFitState;
}

/** AdaGrad's initial accumulator: a row's first steps are learningRate / sqrt(delta). */
const ADAGRAD_DELTA = 1e-2;
/**
 * Labels whose gradient on an example is below this are left out of its update. After the first epoch most of an
 * example's 77 probabilities are far below it, so an update touches a handful; on banking77 1e-3 scored the same
 * test accuracy as 1e-5 and its epochs ran about a third faster.
 */
const ACTIVE_GRADIENT = 1e-3;

/**
 * The softmax head on sparse rows, by AdaGrad one example at a time with one accumulator per feature row (the
 * squared norm of the row's gradients): a rare n-gram keeps a large step while the dense word-vector columns,
 * in every row, slow down. Plain SGD with a decaying step needed 11 epochs on banking77 to reach what AdaGrad
 * reaches in 3, since rare columns got too few, too small steps. Each step costs the row's non-zeros times the
 * labels for the logits, and its update touches only the labels whose gradient is not negligible.
 *
 * Same objective as before: weighted mean cross-entropy + l2 * ||W||^2, bias unpenalized. The L2 part is applied
 * lazily and exactly: each feature row is W_j = scale_j * V_j, and the steps a row was not touched by multiply
 * its scale by (1 - 2 * l2 * step_j) each when it is next read (its step does not change in between).
 * Validation loss is measured after every epoch and the best epoch kept, as the MLP head does.
 */
export function fitSparseSoftmax(
  train: SparseFitData,
  validation: SparseFitData | undefined,
  opts: SparseFitOptions,
): SparseFitOutcome {
  const { n, dim, k } = train;
  const nw = dim * k;
  const warm = opts.warmStart;
  const v = warm ? Float32Array.from(warm.params.w) : new Float32Array(nw);
  const bias = warm ? Float64Array.from(warm.params.b) : new Float64Array(k);
  const rowSquares = warm ? Float32Array.from(warm.rowSquares) : new Float32Array(dim);
  const biasSquares = warm ? Float64Array.from(warm.biasSquares) : new Float64Array(k);
  const scale = new Float64Array(dim).fill(1);
  const rate = Float64Array.from(rowSquares, (g) => opts.learningRate / Math.sqrt(ADAGRAD_DELTA + g));
  const settled = new Float64Array(dim);
  let t = 0;
  /** Applies the L2 shrinkage of the steps since row j was last settled. */
  const settle = (j: number) => {
    const missed = t - settled[j]!;
    if (missed > 0) {
      scale[j]! *= (1 - 2 * opts.l2 * rate[j]!) ** missed;
      settled[j] = t;
    }
  };
  const meanW = weightSum(train) / n;
  const z = new Float64Array(k);
  const active = new Int32Array(k);
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = createRng(opts.seed);
  const snapshot = (): SoftmaxParams => {
    const w = new Float32Array(nw);
    for (let j = 0; j < dim; j++) {
      settle(j);
      const s = scale[j]!;
      for (let c = j * k; c < (j + 1) * k; c++) w[c] = v[c]! * s;
    }
    return { type: 'softmax', dim, k, w, b: Float32Array.from(bias) };
  };
  const stopper = createEarlyStopping({ patience: opts.patience });
  const curve: number[] = [];
  let best: SparseFitState | undefined;
  let epoch = 0;
  for (epoch = 1; epoch <= opts.maxEpochs; epoch++) {
    shuffleInPlace(order, rng);
    for (const i of order) {
      t++;
      const start = train.indptr[i]!;
      const end = train.indptr[i + 1]!;
      for (let c = 0; c < k; c++) z[c] = bias[c]!;
      for (let p = start; p < end; p++) {
        const j = train.indices[p]!;
        settle(j);
        addScaledRow(z, train.values[p]! * scale[j]!, v, j * k);
      }
      softmaxInPlace(z);
      z[train.y[i]!]! -= 1;
      // Example weights are relative to their mean, so class weighting does not change the step size.
      const weight = train.w[i]! / meanW;
      let m = 0;
      let squares = 0;
      for (let c = 0; c < k; c++) {
        const g = z[c]! * weight;
        z[c] = g;
        squares += g * g;
        if (Math.abs(g) > ACTIVE_GRADIENT) active[m++] = c;
        biasSquares[c]! += g * g;
        bias[c]! -= (opts.learningRate * g) / Math.sqrt(ADAGRAD_DELTA + biasSquares[c]!);
      }
      for (let p = start; p < end; p++) {
        const j = train.indices[p]!;
        const x = train.values[p]!;
        rowSquares[j]! += x * x * squares;
        rate[j] = opts.learningRate / Math.sqrt(ADAGRAD_DELTA + rowSquares[j]!);
        const s = (x * rate[j]!) / scale[j]!;
        const base = j * k;
        for (let a = 0; a < m; a++) {
          const c = active[a]!;
          v[base + c]! -= s * z[c]!;
        }
        if (scale[j]! < 1e-6) {
          for (let c = base; c < base + k; c++) v[c]! *= scale[j]!;
          scale[j] = 1;
        }
      }
    }
    if (validation) {
      const params = snapshot();
      const loss = sparseLoss(validation, params);
      curve.push(loss);
      if (stopper.record(loss, epoch)) {
        best = { params, rowSquares: rowSquares.slice(), biasSquares: biasSquares.slice() };
      }
      if (stopper.exhausted || !Number.isFinite(loss)) break;
    }
  }
  if (validation && best) {
    return {
      params: best.params,
      epochs: stopper.bestEpoch,
      validationLoss: stopper.best,
      curve,
      state: best,
    };
  }
  const state = { params: snapshot(), rowSquares, biasSquares };
  const epochs = Math.min(epoch, opts.maxEpochs);
  return {
    params: state.params,
    epochs,
    validationLoss: validation ? stopper.best : Number.NaN,
    curve,
    state,
  };
}
