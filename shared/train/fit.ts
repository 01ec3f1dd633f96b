import * as tf from '@tensorflow/tfjs-core';
import type { HeadParams } from './head-model.js';
import { createEarlyStopping, createRng, shuffleInPlace } from './numerics.js';

/** Standardized examples with per-example loss weights (class weights), kept on the host. */
export interface FitData {
  n: number;
  dim: number;
  k: number;
  /** n * dim, row-major, already standardized. */
  x: Float32Array;
  y: Int32Array;
  w: Float32Array;
}

export interface FitOutcome {
  /** Best by validation loss when validation data was given, else the last iterate. */
  params: HeadParams;
  /** Iterations (softmax) or epochs (mlp) that produced `params`. */
  epochs: number;
  /** Weighted mean cross-entropy of `params` on validation (NaN without validation data). */
  validationLoss: number;
  /** Validation loss after each iteration (softmax) or epoch (mlp), from the first; empty without validation data. */
  curve: number[];
}

export interface SoftmaxFitOptions {
  l2: number;
  maxIterations: number;
  patience: number;
  /** Stop when the largest gradient component falls below this (the loss is a mean, so this is scale-free). */
  gradientTolerance: number;
}

export interface MlpFitOptions {
  l2: number;
  hidden: number;
  dropout: number;
  learningRate: number;
  batchSize: number;
  maxEpochs: number;
  patience: number;
  seed: number;
}

/**
 * The device-side copy of a data set. The transposed features are stored too: tfjs-backend-wasm computes
 * `matMul(a, b, transposeA)` on a slow path (about 20x slower than a plain product here), and every kernel
 * gradient is exactly such a product.
 */
interface DeviceData {
  x: tf.Tensor2D;
  xt: tf.Tensor2D | undefined;
  /** One-hot labels times example weight. */
  yw: tf.Tensor2D;
  /** Example weights as a column. */
  wcol: tf.Tensor2D;
  sumW: number;
}

function toDevice(data: FitData, transposed: boolean): DeviceData {
  const { n, dim, k } = data;
  const yw = new Float32Array(n * k);
  let sumW = 0;
  for (let i = 0; i < n; i++) {
    yw[i * k + data.y[i]!] = data.w[i]!;
    sumW += data.w[i]!;
  }
  return tf.tidy(() => {
    const x = tf.tensor2d(data.x, [n, dim]);
    return {
      x,
      xt: transposed ? tf.transpose(x) : undefined,
      yw: tf.tensor2d(yw, [n, k]),
      wcol: tf.tensor2d(data.w, [n, 1]),
      sumW,
    };
  });
}

function disposeDevice(d: DeviceData | undefined): void {
  if (!d) return;
  tf.dispose([d.x, d.yw, d.wcol]);
  if (d.xt) d.xt.dispose();
}

/** Weighted mean cross-entropy of logits against the device data's labels. */
function weightedLoss(logits: tf.Tensor2D, d: DeviceData): tf.Scalar {
  return tf.div(tf.neg(tf.sum(tf.mul(d.yw, tf.logSoftmax(logits)))), d.sumW);
}

function readScalar(t: tf.Tensor): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

/** Logits of a head (in standardized space) for device-resident features. */
function headLogits(params: HeadParams, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    if (params.type === 'softmax') {
      return tf.add(tf.matMul(x, tf.tensor2d(params.w, [params.dim, params.k])), tf.tensor1d(params.b));
    }
    const h = tf.relu(tf.add(tf.matMul(x, tf.tensor2d(params.w1, [params.dim, params.hidden])), params.b1));
    return tf.add(tf.matMul(h, tf.tensor2d(params.w2, [params.hidden, params.k])), tf.tensor1d(params.b2));
  });
}

/** Class probabilities (n * k) of a head in standardized space. */
export function predictStandardized(
  params: HeadParams,
  data: Pick<FitData, 'n' | 'dim' | 'x'>,
): Float32Array {
  const probs = tf.tidy(() => tf.softmax(headLogits(params, tf.tensor2d(data.x, [data.n, data.dim]))));
  const out = new Float32Array(probs.dataSync());
  probs.dispose();
  return out;
}

/**
 * Multinomial logistic regression by L-BFGS on the full batch, minimizing the same objective as
 * scikit-learn's LogisticRegression: weighted mean cross-entropy + l2 * ||W||^2 (bias unpenalized), from zero.
 * Run to convergence this is sklearn's fit (C = 1 / (2 * l2 * n)). Validation loss is tracked every iteration
 * and the best iterate kept: on real features the best usually comes after 10-50 iterations, well before
 * convergence, and that early stop regularizes on top of L2 (on clothing-small it scored higher on test than
 * sklearn's converged fit with C tuned the same way).
 */
export function fitSoftmax(
  train: FitData,
  validation: FitData | undefined,
  opts: SoftmaxFitOptions,
): FitOutcome {
  const { dim, k } = train;
  const nw = dim * k;
  const dev = toDevice(train, true);
  const val = validation ? toDevice(validation, false) : undefined;
  const toParams = (theta: Float64Array): HeadParams => ({
    type: 'softmax',
    dim,
    k,
    w: Float32Array.from(theta.subarray(0, nw)),
    b: Float32Array.from(theta.subarray(nw)),
  });
  const evaluate = (theta: Float64Array): { f: number; g: Float64Array } => {
    const [lossT, gradT] = tf.tidy(() => {
      const w = tf.tensor2d(Float32Array.from(theta.subarray(0, nw)), [dim, k]);
      const b = tf.tensor1d(Float32Array.from(theta.subarray(nw)));
      const logP = tf.logSoftmax(tf.add(tf.matMul(dev.x, w), b));
      const ce = tf.div(tf.neg(tf.sum(tf.mul(dev.yw, logP))), dev.sumW);
      // d(loss)/d(logits) for weighted softmax cross-entropy: w_i * (p_i - y_i), over the weight total.
      const g = tf.div(tf.sub(tf.mul(tf.exp(logP), dev.wcol), dev.yw), dev.sumW);
      const dW = tf.add(tf.matMul(dev.xt!, g), tf.mul(w, 2 * opts.l2));
      const loss = tf.add(ce, tf.mul(tf.sum(tf.square(w)), opts.l2));
      return [loss, tf.concat([tf.reshape(dW, [-1]), tf.sum(g, 0)])];
    });
    const g = Float64Array.from(gradT.dataSync());
    gradT.dispose();
    return { f: readScalar(lossT), g };
  };
  const validationLoss = (theta: Float64Array): number => {
    const params = toParams(theta);
    return readScalar(tf.tidy(() => weightedLoss(headLogits(params, val!.x), val!)));
  };

  try {
    const stopper = createEarlyStopping({ patience: opts.patience });
    const curve: number[] = [];
    let best: Float64Array | undefined;
    let iterations = 0;
    const theta0 = new Float64Array(nw + k);
    const last = lbfgs(evaluate, theta0, {
      maxIterations: opts.maxIterations,
      gradientTolerance: opts.gradientTolerance,
      onIteration: (iteration, theta) => {
        iterations = iteration;
        if (!val) return false;
        const loss = validationLoss(theta);
        curve.push(loss);
        if (stopper.record(loss, iteration)) best = theta.slice();
        return stopper.exhausted;
      },
    });
    if (val) {
      // A zero-iteration run (already converged at zero) still needs a validation score.
      if (!best) {
        best = last;
        stopper.record(validationLoss(last), 0);
      }
      return { params: toParams(best), epochs: stopper.bestEpoch, validationLoss: stopper.best, curve };
    }
    return { params: toParams(last), epochs: iterations, validationLoss: Number.NaN, curve };
  } finally {
    disposeDevice(dev);
    disposeDevice(val);
  }
}

interface LbfgsOptions {
  maxIterations: number;
  gradientTolerance: number;
  /** Called after each accepted step; returning true stops. */
  onIteration: (iteration: number, theta: Float64Array) => boolean;
  memory?: number;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Limited-memory BFGS with a backtracking (Armijo) line search using quadratic interpolation. Curvature pairs
 * with non-positive s'y are skipped, which keeps the implicit Hessian positive definite without a Wolfe search.
 */
function lbfgs(
  evaluate: (theta: Float64Array) => { f: number; g: Float64Array },
  theta0: Float64Array,
  opts: LbfgsOptions,
): Float64Array {
  const m = opts.memory ?? 10;
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  let theta = theta0.slice();
  let { f, g } = evaluate(theta);
  const size = theta.length;
  for (let iteration = 1; iteration <= opts.maxIterations; iteration++) {
    let gMax = 0;
    for (let i = 0; i < size; i++) gMax = Math.max(gMax, Math.abs(g[i]!));
    if (gMax < opts.gradientTolerance) break;

    // Two-loop recursion: d = -H g.
    const d = g.slice();
    const alpha = new Array<number>(s.length);
    for (let j = s.length - 1; j >= 0; j--) {
      const a = rho[j]! * dot(s[j]!, d);
      alpha[j] = a;
      const yj = y[j]!;
      for (let i = 0; i < size; i++) d[i]! -= a * yj[i]!;
    }
    if (s.length > 0) {
      const last = s.length - 1;
      const gamma = dot(s[last]!, y[last]!) / dot(y[last]!, y[last]!);
      for (let i = 0; i < size; i++) d[i]! *= gamma;
    }
    for (let j = 0; j < s.length; j++) {
      const b = rho[j]! * dot(y[j]!, d);
      const sj = s[j]!;
      for (let i = 0; i < size; i++) d[i]! += sj[i]! * (alpha[j]! - b);
    }
    for (let i = 0; i < size; i++) d[i] = -d[i]!;
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      s.length = 0;
      y.length = 0;
      rho.length = 0;
      for (let i = 0; i < size; i++) d[i] = -g[i]!;
      slope = dot(g, d);
    }
    let sumAbsG = 0;
    for (let i = 0; i < size; i++) sumAbsG += Math.abs(g[i]!);
    let t = s.length === 0 ? Math.min(1, 1 / sumAbsG) : 1;

    let next: { f: number; g: Float64Array } | undefined;
    let candidate = theta;
    for (let tries = 0; tries < 30; tries++) {
      candidate = new Float64Array(size);
      for (let i = 0; i < size; i++) candidate[i] = theta[i]! + t * d[i]!;
      const trial = evaluate(candidate);
      if (Number.isFinite(trial.f) && trial.f <= f + 1e-4 * t * slope) {
        next = trial;
        break;
      }
      // Minimizer of the quadratic through f, slope and the trial value, kept within [0.1t, 0.5t].
      const quad = Number.isFinite(trial.f) ? (-slope * t * t) / (2 * (trial.f - f - slope * t)) : 0.1 * t;
      t = Math.min(0.5 * t, Math.max(0.1 * t, quad));
    }
    if (!next) break;

    const sNew = new Float64Array(size);
    const yNew = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      sNew[i] = candidate[i]! - theta[i]!;
      yNew[i] = next.g[i]! - g[i]!;
    }
    const sy = dot(sNew, yNew);
    if (sy > 1e-12 * dot(yNew, yNew)) {
      s.push(sNew);
      y.push(yNew);
      rho.push(1 / sy);
      if (s.length > m) {
        s.shift();
        y.shift();
        rho.shift();
      }
    }
    const fOld = f;
    theta = candidate;
    f = next.f;
    g = next.g;
    if (opts.onIteration(iteration, theta)) break;
    // float32 losses carry ~1e-7 relative noise; progress below that is not progress.
    if (Math.abs(fOld - f) <= 1e-7 * Math.max(1, Math.abs(f), Math.abs(fOld))) break;
  }
  return theta;
}

/**
 * One hidden ReLU layer with dropout, trained by minibatch Adam with hand-written gradients (see DeviceData
 * for why not autodiff). Minibatches are assembled on the host, already transposed where a gradient needs it.
 */
export function fitMlp(train: FitData, validation: FitData | undefined, opts: MlpFitOptions): FitOutcome {
  const { n, dim, k } = train;
  const h = opts.hidden;
  const val = validation ? toDevice(validation, false) : undefined;
  const rng = createRng(opts.seed);
  const seedOf = () => Math.floor(rng() * 2 ** 31);
  // He-uniform for the ReLU layer, Glorot-uniform for the output, zero biases.
  let state: tf.Tensor[] = tf.tidy(() => {
    const l1 = Math.sqrt(6 / dim);
    const l2 = Math.sqrt(6 / (h + k));
    const params = [
      tf.randomUniform([dim, h], -l1, l1, 'float32', seedOf()),
      tf.zeros([h]),
      tf.randomUniform([h, k], -l2, l2, 'float32', seedOf()),
      tf.zeros([k]),
    ];
    return [...params, ...params.map((p) => tf.zerosLike(p)), ...params.map((p) => tf.zerosLike(p))];
  });
  const snapshot = (): HeadParams => ({
    type: 'mlp',
    dim,
    k,
    hidden: h,
    w1: new Float32Array(state[0]!.dataSync()),
    b1: new Float32Array(state[1]!.dataSync()),
    w2: new Float32Array(state[2]!.dataSync()),
    b2: new Float32Array(state[3]!.dataSync()),
  });

  const batchSize = Math.min(opts.batchSize, n);
  const xb = new Float32Array(batchSize * dim);
  const xbT = new Float32Array(batchSize * dim);
  const ybw = new Float32Array(batchSize * k);
  const wb = new Float32Array(batchSize);
  const order = Array.from({ length: n }, (_, i) => i);
  const beta1 = 0.9;
  const beta2 = 0.999;
  let step = 0;

  try {
    const stopper = createEarlyStopping({ patience: opts.patience });
    const curve: number[] = [];
    let best: HeadParams | undefined;
    let epoch = 0;
    for (epoch = 1; epoch <= opts.maxEpochs; epoch++) {
      shuffleInPlace(order, rng);
      for (let start = 0; start < n; start += batchSize) {
        const b = Math.min(batchSize, n - start);
        ybw.fill(0);
        for (let r = 0; r < b; r++) {
          const src = order[start + r]!;
          const row = train.x.subarray(src * dim, (src + 1) * dim);
          xb.set(row, r * dim);
          for (let c = 0; c < dim; c++) xbT[c * b + r] = row[c]!;
          ybw[r * k + train.y[src]!] = train.w[src]!;
          wb[r] = train.w[src]!;
        }
        step++;
        const dropoutSeed = seedOf();
        const lr = opts.learningRate;
        const next = tf.tidy(() => {
          const [w1, b1, w2, b2] = state as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
          const x = tf.tensor2d(xb.subarray(0, b * dim), [b, dim]);
          const xT = tf.tensor2d(xbT.subarray(0, b * dim), [dim, b]);
          const yw = tf.tensor2d(ybw.subarray(0, b * k), [b, k]);
          const wcol = tf.tensor2d(wb.subarray(0, b), [b, 1]);
          const pre = tf.add(tf.matMul(x, w1), b1);
          let hidden = tf.relu(pre) as tf.Tensor2D;
          let mask: tf.Tensor2D | undefined;
          if (opts.dropout > 0) {
            const u = tf.randomUniform([b, h], 0, 1, 'float32', dropoutSeed);
            const kept = tf.div<tf.Tensor2D>(
              tf.cast(tf.greaterEqual(u, opts.dropout), 'float32'),
              1 - opts.dropout,
            );
            mask = kept;
            hidden = tf.mul(hidden, kept);
          }
          const p = tf.softmax(tf.add(tf.matMul(hidden, w2), b2));
          const g = tf.div(tf.sub(tf.mul(p, wcol), yw), b);
          const dW2 = tf.add(tf.matMul(tf.transpose(hidden), g), tf.mul(w2, 2 * opts.l2));
          let dHidden: tf.Tensor2D = tf.matMul(g, tf.transpose(w2));
          if (mask) dHidden = tf.mul(dHidden, mask);
          dHidden = tf.mul(dHidden, tf.step(pre));
          const dW1 = tf.add(tf.matMul(xT, dHidden), tf.mul(w1, 2 * opts.l2));
          const grads = [dW1, tf.sum(dHidden, 0), dW2, tf.sum(g, 0)];
          const c1 = 1 - beta1 ** step;
          const c2 = 1 - beta2 ** step;
          const out: tf.Tensor[] = [];
          const ms: tf.Tensor[] = [];
          const vs: tf.Tensor[] = [];
          grads.forEach((grad, i) => {
            const m = tf.add(tf.mul(state[4 + i]!, beta1), tf.mul(grad, 1 - beta1));
            const v = tf.add(tf.mul(state[8 + i]!, beta2), tf.mul(tf.square(grad), 1 - beta2));
            const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), 1e-7));
            out.push(tf.sub(state[i]!, tf.mul(update, lr)));
            ms.push(m);
            vs.push(v);
          });
          return [...out, ...ms, ...vs];
        });
        tf.dispose(state);
        state = next;
      }
      if (val) {
        const loss = readScalar(
          tf.tidy(() => {
            const [w1, b1, w2, b2] = state as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
            return weightedLoss(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(val.x, w1), b1)), w2), b2), val);
          }),
        );
        curve.push(loss);
        if (stopper.record(loss, epoch)) best = snapshot();
        if (stopper.exhausted || !Number.isFinite(loss)) break;
      }
    }
    if (val) {
      return { params: best ?? snapshot(), epochs: stopper.bestEpoch, validationLoss: stopper.best, curve };
    }
    return { params: snapshot(), epochs: Math.min(epoch, opts.maxEpochs), validationLoss: Number.NaN, curve };
  } finally {
    tf.dispose(state);
    disposeDevice(val);
  }
}
