import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTf } from '../tf/tf-runtime.js';
import { createRng } from '../train/numerics.js';
import { chooseTrainingMode, type FineTuneResult, fineTune } from './fine-tune.js';
import { InvalidTopError, UnsupportedTopError } from './finetune-errors.js';
import { loadTop, parseTop, topFiles } from './top-package.js';
import { foldTopSegment, type TopSegment } from './top-segment.js';
import { createTrainableTop } from './trainable-top.js';

/**
 * A miniature MobileNetV2: a stem, one residual inverted-residual block and the expansion + stride-2 depthwise
 * of the next, with batch norms carrying non-trivial statistics so folding matters.
 */
function tinyMobileNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const bn = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.batchNormalization({ name: `${name}_BN` }).apply(x) as tfl.SymbolicTensor;
  const relu6 = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.reLU({ maxValue: 6, name: `${name}_relu` }).apply(x) as tfl.SymbolicTensor;
  const conv = (x: tfl.SymbolicTensor, filters: number, name: string) =>
    bn(
      tfl.layers.conv2d({ filters, kernelSize: 1, useBias: false, name }).apply(x) as tfl.SymbolicTensor,
      name,
    );
  const dw = (x: tfl.SymbolicTensor, name: string, strides: number) =>
    bn(
      tfl.layers
        .depthwiseConv2d({
          kernelSize: 3,
          strides,
          padding: strides === 1 ? 'same' : 'valid',
          useBias: false,
          name,
        })
        .apply(x) as tfl.SymbolicTensor,
      name,
    );
  const stem = relu6(conv(input, 4, 'stem'), 'stem');
  const aDw = relu6(dw(relu6(conv(stem, 8, 'a_expand'), 'a_expand'), 'a_depthwise', 1), 'a_depthwise');
  const aAdd = tfl.layers
    .add({ name: 'a_add' })
    .apply([stem, conv(aDw, 4, 'a_project')]) as tfl.SymbolicTensor;
  const bPad = tfl.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [0, 1],
      ],
      name: 'b_pad',
    })
    .apply(relu6(conv(aAdd, 8, 'b_expand'), 'b_expand')) as tfl.SymbolicTensor;
  const out = relu6(dw(bPad, 'b_depthwise', 2), 'b_depthwise');
  const model = tfl.model({ inputs: input, outputs: out });
  const rng = createRng(7);
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const isBn = layer.getClassName() === 'BatchNormalization';
    // BN weights are [gamma, beta, moving_mean, moving_variance]; gamma and variance must stay positive.
    const fresh = weights.map((w, i) =>
      tf.tensor(
        Float32Array.from({ length: w.size }, () =>
          isBn ? (i === 0 || i === 3 ? 0.5 + rng() : (rng() - 0.5) * 0.4) : (rng() - 0.5) * 1.2,
        ),
        w.shape,
      ),
    );
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
  return model;
}

/** Trunk activations [n, 8, 8, 4] whose label shows as a brighter channel, and labels 0..k-1. */
function syntheticActivations(n: number, k: number, seed: number) {
  const rng = createRng(seed);
  const dim = 8 * 8 * 4;
  const features = new Float32Array(n * dim);
  const labels: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % k;
    labels.push(label);
    ids.push(`${i.toString(16).padStart(8, '0')}${'0'.repeat(56)}`);
    for (let p = 0; p < 64; p++) {
      for (let c = 0; c < 4; c++) features[i * dim + p * 4 + c] = rng() * 2 + (c === label ? 1.5 : 0);
    }
  }
  return { features, labels, ids, labelNames: Array.from({ length: k }, (_, i) => `label-${i}`) };
}

let model: tfl.LayersModel;
let segment: TopSegment;
const data = syntheticActivations(60, 3, 11);
let tuned: FineTuneResult;

beforeAll(async () => {
  await initTf();
  model = tinyMobileNet();
  segment = foldTopSegment(model, { trunkCut: 'stem_relu', featureCut: 'b_depthwise_relu' });
  tuned = await fineTune(data, {
    segment,
    trunkId: 'tiny.stem_relu.spatial',
    validationIds: data.ids.filter((_, i) => i % 5 === 0),
    headOptions: { headTypes: ['softmax'], softmaxL2: [1e-3] },
    maxEpochs: 3,
    patience: 3,
    batchSize: 8,
    pretrainedLearningRate: 1e-2,
  });
});

afterAll(() => {
  model.dispose();
});

describe('top segment', () => {
  it('keeps exactly the nodes between the cuts, reading the trunk output as input', () => {
    expect(segment.inputShape).toEqual([8, 8, 4]);
    expect(segment.featureDim).toBe(8);
    expect(segment.nodes.map((n) => n.name)).toEqual([
      'a_expand',
      'a_depthwise',
      'a_project',
      'a_add',
      'b_expand',
      'b_depthwise',
    ]);
    const add = segment.nodes.find((n) => n.name === 'a_add');
    expect(add?.op === 'add' && add.inputs).toEqual(['input', 'a_project']);
  });

  it('refuses a cut that a residual connection crosses', () => {
    expect(() =>
      foldTopSegment(model, { trunkCut: 'a_expand_relu', featureCut: 'b_depthwise_relu' }),
    ).toThrow(UnsupportedTopError);
  });

  it('computes, with pretrained weights, what the frozen layers model computes', () => {
    const top = createTrainableTop({
      segment,
      standardization: { mean: new Float32Array(8), std: new Float32Array(8).fill(1) },
      classifier: { type: 'softmax', dim: 8, k: 2, w: new Float32Array(16), b: new Float32Array(2) },
    });
    const x = tf.randomUniform([3, 8, 8, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const stem = tfl.model({
      inputs: model.inputs,
      outputs: model.getLayer('stem_relu').output as tfl.SymbolicTensor,
    });
    const ours = top.pooled(stem.predict(x) as tf.Tensor4D);
    const reference = tf.mean(model.predict(x) as tf.Tensor4D, [1, 2]);
    const diff = tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0]!;
    expect(diff).toBeLessThan(1e-4 * Math.max(1, tf.max(tf.abs(reference)).dataSync()[0]!));
    tf.dispose([x, ours, reference]);
    top.dispose();
  });
});

describe('fine-tuning', () => {
  it('sends gradients to every pretrained block and the classifier, and to nothing else', () => {
    const top = createTrainableTop({
      segment,
      standardization: { mean: new Float32Array(8), std: new Float32Array(8).fill(1) },
      classifier: {
        type: 'softmax',
        dim: 8,
        k: 3,
        w: new Float32Array(24).fill(0.1),
        b: new Float32Array(3),
      },
    });
    const before = tf.memory().numTensors;
    const x = tf.tensor4d(data.features.subarray(0, 4 * 256), [4, 8, 8, 4]);
    const frozenCopy = x.clone();
    const all = [...top.pretrained, ...top.classifier];
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.mul(top.logits(x, true), tf.tensor2d([1, -1, 0.5], [1, 3]))) as tf.Scalar,
      all,
    );
    // Five convolutions' kernels and biases; the softmax kernel and bias are the classifier's.
    expect(top.pretrained).toHaveLength(10);
    expect(top.classifier).toHaveLength(2);
    expect(Object.keys(grads).sort()).toEqual(all.map((v) => v.name).sort());
    const largest = (t: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]!);
    for (const v of all) expect(largest(grads[v.name]!)).toBeGreaterThan(0);
    // The trunk activations are an input, not a parameter: they come out untouched.
    expect(tf.tidy(() => largest(tf.sub(x, frozenCopy)))).toBe(0);
    tf.dispose([value, ...Object.values(grads), x, frozenCopy]);
    expect(tf.memory().numTensors).toBe(before);
    top.dispose();
  });

  it('leaves the pretrained blocks bit-identical at a zero learning rate while the classifier moves', async () => {
    const frozen = await fineTune(data, {
      segment,
      trunkId: 'tiny.stem_relu.spatial',
      validationIds: data.ids.filter((_, i) => i % 5 === 0),
      headOptions: { headTypes: ['softmax'], softmaxL2: [1e-3] },
      maxEpochs: 1,
      patience: 5,
      batchSize: 8,
      pretrainedLearningRate: 0,
      classifierLearningRate: 0.05,
    });
    const kernel = (pkg: FineTuneResult['top'], name: string) => {
      const spec = pkg.descriptor.weightSpecs.find((s) => s.name === name)!;
      return new Float32Array(pkg.weights.slice(spec.byteOffset, spec.byteOffset + spec.byteLength).buffer);
    };
    for (const name of ['a_expand/kernel', 'a_depthwise/kernel', 'b_depthwise/bias']) {
      expect(Array.from(kernel(frozen.top, name))).toEqual(Array.from(segment.weights.get(name)!.values));
    }
    expect(frozen.bestEpoch).toBe(1);
    expect(Array.from(kernel(frozen.top, 'classifier/w1'))).not.toEqual(
      Array.from(kernel(tuned.top, 'classifier/w1')),
    );
    // With a real learning rate the blocks do move.
    expect(Array.from(kernel(tuned.top, 'a_expand/kernel'))).not.toEqual(
      Array.from(segment.weights.get('a_expand/kernel')!.values),
    );
  });

  it('never returns a top worse on validation than the head it started from', () => {
    expect(tuned.history[0]!.epoch).toBe(0);
    expect(tuned.validationLoss).toBeLessThanOrEqual(tuned.history[0]!.validationLoss);
    expect(tuned.nValidation).toBe(12);
    expect(tuned.nTrain).toBe(48);
  });
});

describe('fine-tuned top', () => {
  it('loads from its stored files and predicts one probability row per example, without leaking tensors', () => {
    const files = topFiles(tuned.top);
    const top = loadTop(parseTop(files.json, files.weights));
    expect(top.inputDim).toBe(256);
    expect(top.trunkId).toBe('tiny.stem_relu.spatial');
    expect(top.labels).toEqual(data.labelNames);
    const n = 7;
    const before = tf.memory().numTensors;
    const probs = top.predict(data.features.subarray(0, n * 256), n);
    top.predict(data.features.subarray(0, n * 256), n);
    expect(tf.memory().numTensors).toBe(before);
    expect(probs).toHaveLength(n * 3);
    for (let i = 0; i < n; i++) {
      const row = probs.subarray(i * 3, i * 3 + 3);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // The fused inference path agrees with the accuracy fine-tuning measured on validation.
    const val = data.ids.flatMap((_, i) => (i % 5 === 0 ? [i] : []));
    const x = new Float32Array(val.length * 256);
    val.forEach((r, i) => {
      x.set(data.features.subarray(r * 256, (r + 1) * 256), i * 256);
    });
    const p = top.predict(x, val.length);
    const correct = val.filter((r, i) => {
      const row = Array.from(p.subarray(i * 3, i * 3 + 3));
      return row.indexOf(Math.max(...row)) === data.labels[r];
    }).length;
    expect(correct / val.length).toBeCloseTo(tuned.metrics.accuracy, 5);
    top.dispose();
    // Disposing frees every weight it loaded, one tensor each.
    expect(tf.memory().numTensors).toBe(before - tuned.top.descriptor.weightSpecs.length);
  });

  it('refuses weights that do not match the descriptor, and a descriptor of another format', () => {
    const files = topFiles(tuned.top);
    const tampered = files.weights.slice();
    tampered[0] = (tampered[0]! + 1) % 256;
    expect(() => parseTop(files.json, tampered)).toThrow(InvalidTopError);
    const other = JSON.stringify({ ...JSON.parse(files.json), format: 'tfjs-layers' });
    try {
      parseTop(other, files.weights);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidTopError);
      expect((err as InvalidTopError).code).toBe('invalid_top');
    }
  });
});

describe('training mode', () => {
  const head = { validationLoss: 0.7, validationAccuracy: 0.8 };

  it('picks fine-tuning only when it is both lower in loss and at least as accurate on validation', () => {
    expect(chooseTrainingMode(head, { validationLoss: 0.6, validationAccuracy: 0.82 })).toBe('finetune');
    expect(chooseTrainingMode(head, { validationLoss: 0.6, validationAccuracy: 0.8 })).toBe('finetune');
    expect(chooseTrainingMode(head, { validationLoss: 0.69, validationAccuracy: 0.79 })).toBe('head');
    expect(chooseTrainingMode(head, { validationLoss: 0.7, validationAccuracy: 0.85 })).toBe('head');
    expect(chooseTrainingMode(head, undefined)).toBe('head');
  });

  it('asks fine-tuning to beat the head by one standard error of accuracy when the head search found validation small', () => {
    // sqrt(0.8 * 0.2 / 100) = 0.04: 0.83 is within the noise of 100 validation photos, 0.85 is not.
    const small = { ...head, n: 100, smallValidation: true };
    expect(chooseTrainingMode(small, { validationLoss: 0.6, validationAccuracy: 0.83 })).toBe('head');
    expect(chooseTrainingMode(small, { validationLoss: 0.6, validationAccuracy: 0.85 })).toBe('finetune');
    expect(
      chooseTrainingMode(
        { ...small, smallValidation: false },
        { validationLoss: 0.6, validationAccuracy: 0.83 },
      ),
    ).toBe('finetune');
  });

  it('lets the project force a mode whatever validation says', () => {
    expect(chooseTrainingMode(head, { validationLoss: 0.9, validationAccuracy: 0.5 }, 'finetune')).toBe(
      'finetune',
    );
    expect(chooseTrainingMode(head, { validationLoss: 0.1, validationAccuracy: 0.99 }, 'head')).toBe('head');
  });
});
