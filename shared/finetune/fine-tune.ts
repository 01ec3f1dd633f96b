import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { exactArrayBuffer } from '../bytes.js';
import {
  CLASS_WEIGHTINGS,
  type ClassWeighting,
  classWeights,
  computeMetrics,
  createEarlyStopping,
  createRng,
  DEFAULT_VALIDATION_FRACTION,
  labelCounts,
  type Metrics,
  type SerializedHead,
  type Standardization,
  shuffleInPlace,
  splitByHash,
  splitByIds,
  standardize,
  type TrainConfig,
  type TrainOptions,
  trainHead,
  unfoldStandardization,
  type ValidationPredictions,
} from '../train/index.js';
import { FineTuneError, InvalidFineTuneInputError } from './finetune-errors.js';
import { serializeTop, type TopPackage } from './top-package.js';
import type { TopSegment } from './top-segment.js';
import { type ClassifierParams, createTrainableTop, type TrainableTop } from './trainable-top.js';

export interface FineTuneInput {
  /** n * h*w*c trunk activations (NHWC per example), row-major: what the spatial feature cache holds. */
  features: Float32Array;
  labels: Int32Array | readonly number[];
  labelNames: readonly string[];
  /** Content hash per example; drives the validation split as in head training. */
  ids: readonly string[];
}

export interface WarmStart {
  /** A head trained on the pooled output of the top's pretrained weights, on the training split only. */
  head: SerializedHead;
  config: TrainConfig;
  metrics: Metrics;
  /** Weighted validation cross-entropy of `head`. */
  validationLoss: number;
}

export interface FineTuneOptions {
  segment: TopSegment;
  /** Backbone id of the frozen trunk whose activations `features` are; recorded in the top. */
  trunkId: string;
  /** Hold out exactly these ids; otherwise a hash split of `validationFraction`. */
  validationIds?: readonly string[];
  validationFraction?: number;
  /** Skips the head search when the caller already fitted one (on the same split, without refit). */
  warmStart?: WarmStart;
  /** Passed to the warm-start head search (validation split and refit are fine-tuning's own). */
  headOptions?: Omit<TrainOptions, 'validationIds' | 'refit'>;
  /** Adam step for the pretrained blocks. Default 1e-4. */
  pretrainedLearningRate?: number;
  /**
   * Adam step for the classifier. Default 1e-4, as low as the pretrained blocks': the classifier starts from a
   * fitted head, and at 1e-3 its first epoch undid the fit (clothing-small validation loss 0.44 -> 0.53-0.55) so
   * that with one seed of two no later epoch beat the warm start; at 1e-4 both seeds did (bench:finetune).
   */
  classifierLearningRate?: number;
  batchSize?: number;
  maxEpochs?: number;
  /** Epochs without a better validation loss before stopping. */
  patience?: number;
  /** L2 on the classifier's kernels (on the mean loss). Default: the warm start's. */
  l2?: number;
  /** Dropout on an MLP classifier's hidden layer. Default: the warm start's. */
  dropout?: number;
  /** Stop after the epoch that crosses this many seconds (e.g. a function's time limit). */
  maxSeconds?: number;
  classWeight?: ClassWeighting;
  precision?: 'float32' | 'float16';
  seed?: number;
  /**
   * Called after each epoch (and once for the warm start, epoch 0) with the epoch cap; a returned promise is
   * awaited before the next epoch, which also lets the event loop run between epochs.
   */
  onEpoch?: (record: EpochRecord, progress: { maxEpochs: number }) => void | Promise<void>;
}

export interface EpochRecord {
  /** 0 is the warm start, before any step. */
  epoch: number;
  trainLoss: number;
  validationLoss: number;
  validationAccuracy: number;
  seconds: number;
}

export interface FineTuneResult {
  top: TopPackage;
  /** The best epoch, scored on validation. */
  metrics: Metrics;
  validationLoss: number;
  /** What `metrics` scored: the best epoch's probabilities for each validation photo. */
  validationPredictions: ValidationPredictions;
  bestEpoch: number;
  warmStart: WarmStart;
  history: EpochRecord[];
  /** Whether the loop ended by patience, by the epoch cap or by the time budget. */
  stoppedBy: 'patience' | 'max_epochs' | 'time_budget';
  nTrain: number;
  nValidation: number;
  seconds: number;
}

const optionsSchema = z.object({
  validationFraction: z.number().gt(0).lt(1).default(DEFAULT_VALIDATION_FRACTION),
  pretrainedLearningRate: z.number().nonnegative().default(1e-4),
  classifierLearningRate: z.number().positive().default(1e-4),
  batchSize: z.number().int().positive().default(32),
  maxEpochs: z.number().int().positive().default(15),
  patience: z.number().int().positive().default(3),
  l2: z.number().nonnegative().optional(),
  dropout: z.number().min(0).lt(1).optional(),
  maxSeconds: z.number().positive().optional(),
  classWeight: z.enum(CLASS_WEIGHTINGS).default('balanced'),
  precision: z.enum(['float32', 'float16']).default('float32'),
  seed: z.number().int().default(42),
});

const EVAL_BATCH = 64;

/**
 * Fine-tunes the top block(s) above a frozen trunk, from cached trunk activations: the pretrained blocks
 * (batch norm folded, statistics frozen) plus pooling plus a classifier warm-started from a head-only fit on the
 * same split, with Adam at a lower step for the pretrained weights, early stopping on validation loss and the
 * best epoch kept. Epoch 0 (the warm start itself) competes too, so the result is never worse on validation
 * than the head it started from.
 */
export async function fineTune(input: FineTuneInput, options: FineTuneOptions): Promise<FineTuneResult> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidFineTuneInputError(
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    );
  }
  const opts = parsed.data;
  const started = performance.now();
  const { segment } = options;
  const [h, w, c] = segment.inputShape;
  const dim = h * w * c;
  const n = input.ids.length;
  const k = input.labelNames.length;
  if (input.features.length !== n * dim) {
    throw new InvalidFineTuneInputError(
      `${input.features.length} values for ${n} examples of ${h}x${w}x${c} trunk activations`,
    );
  }
  if (input.labels.length !== n)
    throw new InvalidFineTuneInputError(`${n} ids but ${input.labels.length} labels`);
  const y = Int32Array.from(input.labels);
  if (y.some((v) => v < 0 || v >= k)) throw new InvalidFineTuneInputError(`a label is not in 0..${k - 1}`);

  const split = options.validationIds
    ? splitByIds(input.ids, options.validationIds)
    : splitByHash(input.ids, y, { fraction: opts.validationFraction });
  if (split.validation.length === 0 || split.train.length === 0) {
    throw new InvalidFineTuneInputError('fine-tuning needs both training and validation examples');
  }
  const classWeight = classWeights(labelCounts(y, k, split.train), opts.classWeight);

  // Pooled output of the pretrained top: the head-only problem on this top, for the warm start.
  const probe = createTrainableTop({
    segment,
    standardization: {
      mean: new Float32Array(segment.featureDim),
      std: new Float32Array(segment.featureDim).fill(1),
    },
    classifier: {
      type: 'softmax',
      dim: segment.featureDim,
      k,
      w: new Float32Array(segment.featureDim * k),
      b: new Float32Array(k),
    },
  });
  let pooled: Float32Array;
  try {
    pooled = pooledFeatures(probe, input.features, dim, segment, n);
  } finally {
    probe.dispose();
  }
  const standardization = standardize(pooled, segment.featureDim, split.train);

  let warm = options.warmStart;
  if (!warm) {
    const trained = await trainHead(
      { features: pooled, dim: segment.featureDim, labels: y, labelNames: input.labelNames, ids: input.ids },
      {
        ...options.headOptions,
        classWeight: opts.classWeight,
        validationIds: split.validation.map((i) => input.ids[i]!),
        refit: false,
      },
    );
    warm = {
      head: trained.head,
      config: trained.config,
      metrics: trained.metrics,
      validationLoss: trained.validationLoss,
    };
  }
  const classifier = classifierFromHead(warm.head, standardization, segment.featureDim, k);
  const l2 = opts.l2 ?? warm.config.l2;
  const dropout = opts.dropout ?? warm.config.dropout ?? 0;

  const top = createTrainableTop({ segment, standardization, classifier, dropout });
  const optPretrained = tf.train.adam(opts.pretrainedLearningRate);
  const optClassifier = tf.train.adam(opts.classifierLearningRate);
  const rng = createRng(opts.seed);
  const history: EpochRecord[] = [];
  try {
    const evaluate = (): { loss: number; metrics: Metrics; probs: Float32Array } => {
      const probs = predictRows(top, input.features, dim, segment, split.validation, k);
      const yv = split.validation.map((i) => y[i]!);
      let loss = 0;
      let sumW = 0;
      yv.forEach((label, i) => {
        const wgt = classWeight[label]!;
        loss -= wgt * Math.log(Math.max(probs[i * k + label]!, 1e-12));
        sumW += wgt;
      });
      return { loss: loss / sumW, metrics: computeMetrics(yv, probs, input.labelNames), probs };
    };

    const initial = evaluate();
    history.push({
      epoch: 0,
      trainLoss: Number.NaN,
      validationLoss: initial.loss,
      validationAccuracy: initial.metrics.accuracy,
      seconds: (performance.now() - started) / 1000,
    });
    await options.onEpoch?.(history[0]!, { maxEpochs: opts.maxEpochs });
    // Head training's stopping rule (shared/train/numerics.ts), with the warm start as the first record.
    const stopper = createEarlyStopping({ patience: opts.patience });
    stopper.record(initial.loss, 0);
    let best = { metrics: initial.metrics, probs: initial.probs, state: top.saveState() };
    let stoppedBy: FineTuneResult['stoppedBy'] = 'max_epochs';
    const order = [...split.train];
    const batch = Math.min(opts.batchSize, order.length);
    const xb = new Float32Array(batch * dim);
    const ywb = new Float32Array(batch * k);
    const pretrainedNames = new Set(top.pretrained.map((v) => v.name));
    const vars = [...top.pretrained, ...top.classifier];
    for (let epoch = 1; epoch <= opts.maxEpochs; epoch++) {
      shuffleInPlace(order, rng);
      let lossSum = 0;
      let steps = 0;
      for (let s = 0; s + batch <= order.length; s += batch) {
        // Full batches only: a ragged last batch would give its few examples an outsized step.
        ywb.fill(0);
        let sumW = 0;
        for (let r = 0; r < batch; r++) {
          const src = order[s + r]!;
          xb.set(input.features.subarray(src * dim, (src + 1) * dim), r * dim);
          const wgt = classWeight[y[src]!]!;
          ywb[r * k + y[src]!] = wgt;
          sumW += wgt;
        }
        const seed = Math.floor(rng() * 2 ** 31);
        const loss = tf.tidy(() => {
          const x = tf.tensor4d(xb, [batch, h, w, c]);
          const yw = tf.tensor2d(ywb, [batch, k]);
          const { value, grads } = tf.variableGrads(() => {
            const ce = tf.div(tf.neg(tf.sum(tf.mul(yw, tf.logSoftmax(top.logits(x, true, seed))))), sumW);
            return tf.add(ce, tf.mul(top.classifierKernelNorm(), l2)) as tf.Scalar;
          }, vars);
          const gp: { name: string; tensor: tf.Tensor }[] = [];
          const gc: { name: string; tensor: tf.Tensor }[] = [];
          for (const [name, tensor] of Object.entries(grads)) {
            (pretrainedNames.has(name) ? gp : gc).push({ name, tensor });
          }
          if (opts.pretrainedLearningRate > 0) optPretrained.applyGradients(gp);
          optClassifier.applyGradients(gc);
          return value;
        });
        lossSum += loss.dataSync()[0]!;
        loss.dispose();
        steps++;
      }
      const scored = evaluate();
      const record: EpochRecord = {
        epoch,
        trainLoss: lossSum / Math.max(1, steps),
        validationLoss: scored.loss,
        validationAccuracy: scored.metrics.accuracy,
        seconds: (performance.now() - started) / 1000,
      };
      history.push(record);
      await options.onEpoch?.(record, { maxEpochs: opts.maxEpochs });
      if (!Number.isFinite(scored.loss)) {
        throw new FineTuneError('diverged', `validation loss became ${scored.loss} at epoch ${epoch}`);
      }
      if (stopper.record(scored.loss, epoch)) {
        best = { metrics: scored.metrics, probs: scored.probs, state: top.saveState() };
      }
      if (stopper.exhausted) {
        stoppedBy = 'patience';
        break;
      }
      if (opts.maxSeconds !== undefined && record.seconds >= opts.maxSeconds) {
        stoppedBy = 'time_budget';
        break;
      }
    }
    top.restoreState(best.state);
    const seconds = (performance.now() - started) / 1000;
    const pkg = serializeTop(top.snapshot(), {
      trunkId: options.trunkId,
      trunkCut: segment.trunkCut,
      featureCut: segment.featureCut,
      inputShape: segment.inputShape,
      labels: input.labelNames,
      precision: opts.precision,
      training: {
        bestEpoch: stopper.bestEpoch,
        epochs: history.length - 1,
        pretrainedLearningRate: opts.pretrainedLearningRate,
        classifierLearningRate: opts.classifierLearningRate,
        batchSize: batch,
        l2,
        dropout,
        classWeight: opts.classWeight,
        warmStart: { headType: warm.config.headType, l2: warm.config.l2 },
        validationLoss: stopper.best,
        nTrain: split.train.length,
        nValidation: split.validation.length,
        seed: opts.seed,
      },
    });
    return {
      top: pkg,
      metrics: best.metrics,
      validationLoss: stopper.best,
      validationPredictions: { ids: split.validation.map((i) => input.ids[i]!), probs: best.probs },
      bestEpoch: stopper.bestEpoch,
      warmStart: warm,
      history,
      stoppedBy,
      nTrain: split.train.length,
      nValidation: split.validation.length,
      seconds,
    };
  } finally {
    top.dispose();
    optPretrained.dispose();
    optClassifier.dispose();
  }
}

function pooledFeatures(
  top: TrainableTop,
  features: Float32Array,
  dim: number,
  segment: TopSegment,
  n: number,
): Float32Array {
  const [h, w, c] = segment.inputShape;
  const out = new Float32Array(n * segment.featureDim);
  for (let s = 0; s < n; s += EVAL_BATCH) {
    const b = Math.min(EVAL_BATCH, n - s);
    const p = tf.tidy(() => top.pooled(tf.tensor4d(features.subarray(s * dim, (s + b) * dim), [b, h, w, c])));
    out.set(p.dataSync(), s * segment.featureDim);
    p.dispose();
  }
  return out;
}

function predictRows(
  top: TrainableTop,
  features: Float32Array,
  dim: number,
  segment: TopSegment,
  rows: readonly number[],
  k: number,
): Float32Array {
  const [h, w, c] = segment.inputShape;
  const out = new Float32Array(rows.length * k);
  const buf = new Float32Array(EVAL_BATCH * dim);
  for (let s = 0; s < rows.length; s += EVAL_BATCH) {
    const b = Math.min(EVAL_BATCH, rows.length - s);
    for (let r = 0; r < b; r++)
      buf.set(features.subarray(rows[s + r]! * dim, (rows[s + r]! + 1) * dim), r * dim);
    const p = tf.tidy(() =>
      tf.softmax(top.logits(tf.tensor4d(buf.subarray(0, b * dim), [b, h, w, c]), false)),
    );
    out.set(p.dataSync(), s * k);
    p.dispose();
  }
  return out;
}

/**
 * Reads a serialized head (standardization folded in, so it takes raw features) and re-expresses its first layer
 * in `standardization`'s coordinates: W = W' * std, b = b' + mean . W'. Exact, whatever standardization the head
 * was trained with.
 */
export function classifierFromHead(
  head: SerializedHead,
  standardization: Standardization,
  dim: number,
  k: number,
): ClassifierParams {
  const manifest = head.modelJson.weightsManifest as { weights: tf.io.WeightsManifestEntry[] }[] | undefined;
  const specs = manifest?.[0]?.weights;
  if (!specs) throw new InvalidFineTuneInputError('the warm-start head has no weights manifest');
  const named = tf.io.decodeWeights(exactArrayBuffer(head.weightData), specs);
  try {
    const read = (suffix: string): Float32Array => {
      const key = Object.keys(named).find((name) => name.endsWith(suffix));
      if (!key) throw new InvalidFineTuneInputError(`the warm-start head has no '${suffix}'`);
      return new Float32Array(named[key]!.dataSync());
    };
    const hasHidden = Object.keys(named).some((name) => name.endsWith('hidden/kernel'));
    const first = read(hasHidden ? 'hidden/kernel' : 'probs/kernel');
    const firstBias = read(hasHidden ? 'hidden/bias' : 'probs/bias');
    const out = firstBias.length;
    if (first.length !== dim * out) {
      throw new InvalidFineTuneInputError(
        `the warm-start head takes ${first.length / out} features, not ${dim}`,
      );
    }
    const { kernel: w, bias: b } = unfoldStandardization({ kernel: first, bias: firstBias }, standardization);
    if (!hasHidden) return { type: 'softmax', dim, k, w, b };
    const w2 = read('probs/kernel');
    const b2 = read('probs/bias');
    if (b2.length !== k)
      throw new InvalidFineTuneInputError(`the warm-start head has ${b2.length} outputs, not ${k}`);
    return { type: 'mlp', dim, k, hidden: out, w1: w, b1: b, w2, b2 };
  } finally {
    tf.dispose(Object.values(named));
  }
}

export type TrainingMode = 'head' | 'finetune';

/** One mode's score on the shared validation split. */
export interface ModeScore {
  /** Class-weighted mean cross-entropy, as trainHead's search and fineTune both report it. */
  validationLoss: number;
  validationAccuracy: number;
  /** Validation examples behind the scores. */
  n?: number;
  /** The head search found the split too small to choose on and cross-validated instead (trainHead's rule). */
  smallValidation?: boolean;
}

/**
 * How much more accurate on validation the fine-tuned head must be, when the head search judged the split small:
 * one standard error of an accuracy on that split, sqrt(p (1 - p) / n) at the head-only accuracy p. Fine-tuning
 * starts from the head-only fit and keeps its best epoch *on this same split*, so on a small split it wins by
 * luck alone: at n = 200 and p = 0.8 one standard error is 2.8 points, and a best-of-many-epochs pick clears
 * half of that easily. Where the split is large the margin is 0, the rule before this one.
 */
export function fineTuneMargin(headOnly: ModeScore): number {
  if (!headOnly.smallValidation || !headOnly.n) return 0;
  const p = headOnly.validationAccuracy;
  return Math.sqrt((p * (1 - p)) / headOnly.n);
}

/**
 * Picks the mode a new version uses. Fine-tuning starts from a head-only fit and keeps its best epoch, so its
 * validation loss is never above the warm start's: a lower loss alone would pick it on noise. It must also be
 * more accurate on validation than the head-only head by `fineTuneMargin` (at least as accurate where the split
 * is large). A forced mode (project setting) wins.
 */
export function chooseTrainingMode(
  headOnly: ModeScore,
  fineTuned: ModeScore | undefined,
  forced?: TrainingMode,
): TrainingMode {
  if (forced) return forced;
  if (!fineTuned) return 'head';
  const margin = fineTuneMargin(headOnly);
  const accurate =
    margin > 0
      ? fineTuned.validationAccuracy > headOnly.validationAccuracy + margin
      : fineTuned.validationAccuracy >= headOnly.validationAccuracy;
  return fineTuned.validationLoss < headOnly.validationLoss && accurate ? 'finetune' : 'head';
}
