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
 * twice as fast as the plain one on 77 labels (the forward pass is most of SGD's time).
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

export interface SparseSgdOptions {
  l2: number;
  /** Step size at the start; it decays as learningRate / (1 + examples seen / decayExamples). */
  learningRate: number;
  decayExamples: number;
  maxEpochs: number;
  patience: number;
  seed: number;
}

/**
 * The softmax head on sparse rows, by stochastic gradient descent one example at a time: each step costs the
 * row's non-zeros times the labels for the logits, and its update touches only the labels whose gradient is not
 * negligible (after an epoch or two, a handful). Full-batch L-BFGS (`fitSoftmax`) needs 50-300 passes over the
 * data to reach the same validation loss; SGD gets there in 5-15. Same objective: weighted mean cross-entropy
 * + l2 * ||W||^2, bias unpenalized; the L2 shrinkage is applied as one scale for all of W (W = scale * V), so a
 * step does not touch the columns its row does not use. Validation loss is measured after every epoch and the
 * best epoch kept, as the MLP head does.
 */
export function fitSparseSoftmax(
  train: SparseFitData,
  validation: SparseFitData | undefined,
  opts: SparseSgdOptions,
): FitOutcome {
  const { n, dim, k } = train;
  const nw = dim * k;
  const v = new Float32Array(nw);
  const bias = new Float64Array(k);
  let scale = 1;
  const meanW = weightSum(train) / n;
  const z = new Float64Array(k);
  const active = new Int32Array(k);
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = createRng(opts.seed);
  const snapshot = (): SoftmaxParams => {
    const w = new Float32Array(nw);
    for (let t = 0; t < nw; t++) w[t] = v[t]! * scale;
    return { type: 'softmax', dim, k, w, b: Float32Array.from(bias) };
  };
  const stopper = createEarlyStopping({ patience: opts.patience });
  const curve: number[] = [];
  let best: SoftmaxParams | undefined;
  let epoch = 0;
  let seen = 0;
  for (epoch = 1; epoch <= opts.maxEpochs; epoch++) {
    shuffleInPlace(order, rng);
    for (const i of order) {
      // Decay by examples seen, not epochs: a small data set then takes as many steps at each size as a large one.
      const lr = opts.learningRate / (1 + seen++ / opts.decayExamples);
      const shrink = 1 - 2 * opts.l2 * lr;
      for (let c = 0; c < k; c++) z[c] = 0;
      const start = train.indptr[i]!;
      const end = train.indptr[i + 1]!;
      for (let p = start; p < end; p++) addScaledRow(z, train.values[p]!, v, train.indices[p]! * k);
      for (let c = 0; c < k; c++) z[c] = z[c]! * scale + bias[c]!;
      softmaxInPlace(z);
      z[train.y[i]!]! -= 1;
      // Example weights are relative to their mean, so class weighting does not change the step size.
      const step = (lr * train.w[i]!) / meanW;
      let m = 0;
      for (let c = 0; c < k; c++) {
        if (Math.abs(z[c]!) > 1e-5) active[m++] = c;
        bias[c]! -= step * z[c]!;
      }
      scale *= shrink;
      const s = step / scale;
      for (let p = start; p < end; p++) {
        const base = train.indices[p]! * k;
        const x = train.values[p]! * s;
        for (let a = 0; a < m; a++) {
          const c = active[a]!;
          v[base + c]! -= x * z[c]!;
        }
      }
      if (scale < 1e-6) {
        for (let t = 0; t < nw; t++) v[t]! *= scale;
        scale = 1;
      }
    }
    if (validation) {
      const params = snapshot();
      const loss = sparseLoss(validation, params);
      curve.push(loss);
      if (stopper.record(loss, epoch)) best = params;
      if (stopper.exhausted || !Number.isFinite(loss)) break;
    }
  }
  if (validation) {
    return { params: best ?? snapshot(), epochs: stopper.bestEpoch, validationLoss: stopper.best, curve };
  }
  return { params: snapshot(), epochs: Math.min(epoch, opts.maxEpochs), validationLoss: Number.NaN, curve };
}
