import { beforeAll, describe, expect, it } from 'vitest';
import { initTf, tf } from '../tf/tf-runtime.js';
import { type HeadParams, loadHead, serializeHead } from './head-model.js';
import { computeMetrics } from './metrics.js';
import { foldStandardization } from './numerics.js';
import { gaussianBlobs } from './synthetic-blobs.js';
import { InsufficientExamplesError, TooFewLabelsError } from './train-errors.js';
import { type TrainInput, trainHead } from './train-head.js';

beforeAll(async () => {
  await initTf({ backend: 'wasm' });
});

/** Rows `rows` of a data set, as a new input. */
function subset(input: TrainInput, rows: number[]): TrainInput {
  const features = new Float32Array(rows.length * input.dim);
  rows.forEach((r, i) => {
    features.set(input.features.subarray(r * input.dim, (r + 1) * input.dim), i * input.dim);
  });
  return {
    features,
    dim: input.dim,
    labels: rows.map((r) => input.labels[r]!),
    labelNames: input.labelNames,
    ids: rows.map((r) => input.ids[r]!),
  };
}

const FAST = { headTypes: ['softmax'], softmaxL2: [1e-3, 1e-2] } as const;

describe('trainHead', () => {
  it('learns separable Gaussian blobs in 64 dimensions with both head types searched', async () => {
    const data = gaussianBlobs({
      perLabel: 50,
      labels: 5,
      dim: 64,
      separation: 0.5,
      seed: 7,
      offset: 5,
      scale: 3,
    });
    const result = await trainHead(data, { mlpL2: [1e-3] });
    expect(result.metrics.accuracy).toBeGreaterThan(0.95);
    expect(result.search.map((c) => c.headType)).toContain('mlp');
    expect(result.config.nTrain + result.config.nValidation).toBe(250);
    const head = await loadHead(result.head);
    const probs = head.predict(data.features, 250);
    head.dispose();
    expect(computeMetrics(data.labels, probs, data.labelNames).accuracy).toBeGreaterThan(0.95);
  });

  it('names both examples and their labels when an id repeats, and reports each candidate of the search', async () => {
    const data = gaussianBlobs({ perLabel: 10, labels: 2, dim: 8, separation: 1, seed: 1 });
    const ids = [...data.ids];
    ids[15] = ids[2]!;
    const err = await trainHead({ ...data, ids }, FAST).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_training_input' });
    expect((err as Error).message).toMatch(
      new RegExp(
        `id ${ids[2]} appears twice \\(examples 2 and 15, labels '${data.labelNames[data.labels[2]!]}' and '${data.labelNames[data.labels[15]!]}'\\)`,
      ),
    );
    const seen: [number, number][] = [];
    await trainHead(data, { ...FAST, onCandidate: async (_c, p) => void seen.push([p.done, p.total]) });
    expect(seen).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it('refuses fewer than 2 labels', async () => {
    const data = gaussianBlobs({ perLabel: 10, labels: 1, dim: 8, separation: 1, seed: 1 });
    await expect(trainHead(data)).rejects.toBeInstanceOf(TooFewLabelsError);
    await expect(trainHead(data)).rejects.toMatchObject({ code: 'too_few_labels' });
  });

  it('names every label below the minimum with its count and how many more it needs', async () => {
    const data = gaussianBlobs({ perLabel: [12, 3, 5, 0], labels: 4, dim: 8, separation: 1, seed: 1 });
    const err = await trainHead(data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientExamplesError);
    expect(err).toMatchObject({
      code: 'insufficient_examples',
      shortLabels: [
        { label: 'label-1', count: 3, needed: 2 },
        { label: 'label-3', count: 0, needed: 5 },
      ],
    });
    expect((err as Error).message).toBe(
      "every label needs at least 5 examples: 'label-1' has 3 (needs 2 more), 'label-3' has 0 (needs 5 more)",
    );
  });

  it('raises minority recall on a 10:1 imbalanced problem with balanced class weights', async () => {
    const all = gaussianBlobs({ perLabel: [400, 200], labels: 2, dim: 64, separation: 0.18, seed: 3 });
    const byLabel = [0, 1].map((c) => [...all.labels.keys()].filter((i) => all.labels[i] === c));
    const train = subset(all, [...byLabel[0]!.slice(0, 200), ...byLabel[1]!.slice(0, 20)]);
    const test = subset(all, [...byLabel[0]!.slice(200), ...byLabel[1]!.slice(20)]);
    const recall = async (classWeight: 'balanced' | 'none') => {
      const result = await trainHead(train, { ...FAST, classWeight });
      const head = await loadHead(result.head);
      const probs = head.predict(test.features, test.ids.length);
      head.dispose();
      return computeMetrics(test.labels, probs, test.labelNames).perLabel[1]!.recall;
    };
    const weighted = await recall('balanced');
    const unweighted = await recall('none');
    expect(weighted).toBeGreaterThan(unweighted + 0.05);
  });

  it('is deterministic for the same input', async () => {
    const data = gaussianBlobs({ perLabel: 20, labels: 3, dim: 16, separation: 0.4, seed: 5 });
    const options = { mlpL2: [1e-3], maxEpochs: 20 };
    const a = await trainHead(data, options);
    const b = await trainHead(data, options);
    expect(b.config).toEqual(a.config);
    expect(b.metrics).toEqual(a.metrics);
    expect(Buffer.from(b.head.weightData).equals(Buffer.from(a.head.weightData))).toBe(true);
    expect(b.datasetSnapshot).toBe(a.datasetSnapshot);
  });

  it('validates on exactly the given ids when validationIds is set', async () => {
    const data = gaussianBlobs({ perLabel: 20, labels: 2, dim: 8, separation: 1, seed: 9 });
    const validationIds = data.ids.filter((_, i) => i % 4 === 0);
    const result = await trainHead(data, { ...FAST, validationIds });
    expect(result.config.nValidation).toBe(10);
    expect(result.metrics.n).toBe(10);
  });

  it('summarizes the data set by id and label name, independent of order', async () => {
    const data = gaussianBlobs({ perLabel: 6, labels: 2, dim: 4, separation: 2, seed: 2 });
    const reversed = subset(data, [...data.ids.keys()].reverse());
    const relabelled = { ...data, labelNames: ['other-0', 'other-1'] };
    const [a, b, c] = await Promise.all([data, reversed, relabelled].map((d) => trainHead(d, FAST)));
    expect(a!.datasetSnapshot).toMatch(/^[0-9a-f]{64}$/);
    expect(b!.datasetSnapshot).toBe(a!.datasetSnapshot);
    expect(c!.datasetSnapshot).not.toBe(a!.datasetSnapshot);
  });

  it('leaves no tensors behind across repeated trainings and predictions', async () => {
    const data = gaussianBlobs({ perLabel: 15, labels: 3, dim: 16, separation: 0.5, seed: 4 });
    const options = { mlpL2: [1e-3], maxEpochs: 10 };
    const cycle = async () => {
      const result = await trainHead(data, options);
      const head = await loadHead(result.head);
      head.predict(data.features, data.ids.length);
      head.dispose();
    };
    await cycle();
    const before = tf.memory().numTensors;
    await cycle();
    await cycle();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('stored heads', () => {
  const dim = 12;
  const k = 3;
  const n = 40;
  const rand = (() => {
    let s = 12345;
    return () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
  })();
  // Features off zero with scales over two orders of magnitude (|mean| / std up to 100): folding moves the
  // mean into the bias, so float32 cancellation grows with that ratio; real backbone features stay well below it.
  const mean = Float32Array.from({ length: dim }, (_, j) => 5 * (j - 6));
  const std = Float32Array.from({ length: dim }, (_, j) => 0.3 * 4 ** (j % 4));
  const raw = Float32Array.from(
    { length: n * dim },
    (_, i) => mean[i % dim]! + std[i % dim]! * (rand() * 4 - 2),
  );
  const standardized = raw.map((v, i) => (v - mean[i % dim]!) / std[i % dim]!);
  const softmax: HeadParams = {
    type: 'softmax',
    dim,
    k,
    w: Float32Array.from({ length: dim * k }, () => rand() - 0.5),
    b: Float32Array.from({ length: k }, () => rand() - 0.5),
  };
  const mlp: HeadParams = {
    type: 'mlp',
    dim,
    k,
    hidden: 8,
    w1: Float32Array.from({ length: dim * 8 }, () => rand() - 0.5),
    b1: Float32Array.from({ length: 8 }, () => rand() - 0.5),
    w2: Float32Array.from({ length: 8 * k }, () => rand() - 0.5),
    b2: Float32Array.from({ length: k }, () => rand() - 0.5),
  };

  /** Reference forward pass in float64 on standardized features. */
  function reference(params: HeadParams): Float64Array {
    const out = new Float64Array(n * k);
    for (let i = 0; i < n; i++) {
      const x = Array.from(standardized.subarray(i * dim, (i + 1) * dim));
      const dense = (input: number[], w: Float32Array, b: Float32Array, units: number) =>
        Array.from({ length: units }, (_, c) =>
          input.reduce((acc, v, j) => acc + v * w[j * units + c]!, b[c]!),
        );
      const logits =
        params.type === 'softmax'
          ? dense(x, params.w, params.b, k)
          : dense(
              dense(x, params.w1, params.b1, params.hidden).map((v) => Math.max(0, v)),
              params.w2,
              params.b2,
              k,
            );
      const max = Math.max(...logits);
      const e = logits.map((z) => Math.exp(z - max));
      const sum = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => {
        out[i * k + c] = v / sum;
      });
    }
    return out;
  }

  it('folds standardization into the first layer exactly', async () => {
    for (const params of [softmax, mlp]) {
      const head = await loadHead(await serializeHead(params, { mean, std }, ['a', 'b', 'c']));
      const probs = head.predict(raw, n);
      head.dispose();
      const expected = reference(params);
      let worst = 0;
      for (let i = 0; i < probs.length; i++) worst = Math.max(worst, Math.abs(probs[i]! - expected[i]!));
      expect(worst).toBeLessThan(1e-5);
    }
  });

  it('maps the mean to the bias and scales each kernel row by 1/std', () => {
    const kernel = Float32Array.from([1, 2, 3, 4]);
    const folded = foldStandardization(kernel, Float32Array.from([0.5, -0.5]), {
      mean: Float32Array.from([10, -2]),
      std: Float32Array.from([2, 0.5]),
    });
    expect(Array.from(folded.kernel)).toEqual([0.5, 1, 6, 8]);
    // b - (10/2)*[1,2] - (-2/0.5)*[3,4] = [0.5 - 5 + 12, -0.5 - 10 + 16]
    expect(Array.from(folded.bias)).toEqual([7.5, 5.5]);
  });

  it('predicts the same probabilities after a round trip through JSON and bytes', async () => {
    const stored = await serializeHead(mlp, { mean, std }, ['a', 'b', 'c']);
    const restored = {
      ...JSON.parse(
        JSON.stringify({ modelJson: stored.modelJson, labels: stored.labels, inputDim: stored.inputDim }),
      ),
      weightData: new Uint8Array(Buffer.from(Buffer.from(stored.weightData).toString('base64'), 'base64')),
    };
    const [a, b] = await Promise.all([loadHead(stored), loadHead(restored)]);
    expect(b.predict(raw, n)).toEqual(a.predict(raw, n));
    expect(b.labels).toEqual(['a', 'b', 'c']);
    a.dispose();
    b.dispose();
  });

  it('refuses a head whose labels do not match its outputs', async () => {
    const stored = await serializeHead(softmax, { mean, std }, ['a', 'b', 'c']);
    await expect(loadHead({ ...stored, labels: ['a', 'b'] })).rejects.toMatchObject({ code: 'invalid_head' });
  });
});

describe('cross-validated search', () => {
  it('scores candidates by 5-fold cross-validation when validation has fewer than 50 examples of a label, and on the split otherwise', async () => {
    const small = gaussianBlobs({ perLabel: 60, labels: 3, dim: 8, separation: 0.5, seed: 4 });
    const s = await trainHead(small, FAST);
    expect(s.config).toMatchObject({ selection: 'cross-validation', folds: 5, selectBy: 'accuracy' });
    expect(s.config.nValidation).toBeLessThan(3 * 50);
    const large = gaussianBlobs({ perLabel: 400, labels: 3, dim: 8, separation: 0.5, seed: 4 });
    const l = await trainHead(large, FAST);
    expect(l.config).toMatchObject({ selection: 'validation-split', selectBy: 'loss' });
    expect(l.config.folds).toBeUndefined();
  });

  it('keeps the single split when the data is too large for cross-validation to be cheap', async () => {
    const small = gaussianBlobs({ perLabel: 60, labels: 3, dim: 8, separation: 0.5, seed: 4 });
    const cells = 180 * 8;
    const at = await trainHead(small, { ...FAST, crossValidationMaxCells: cells });
    expect(at.config.selection).toBe('cross-validation');
    const above = await trainHead(small, { ...FAST, crossValidationMaxCells: cells - 1 });
    expect(above.config).toMatchObject({ selection: 'validation-split', selectBy: 'loss' });
  });

  it('picks the L2 that fresh data favours where the one tiny split picks a weaker one', async () => {
    // 20 photos per label (4 in validation) of 40 noisy features: strong L2 generalizes best, but early stopping
    // on 12 validation photos makes the weakest look best. 900 fresh examples say which is right.
    const k = 3;
    const dim = 40;
    const nTrain = 60;
    const all = gaussianBlobs({ perLabel: 320, labels: k, dim, separation: 0.4, seed: 3 });
    const input = subset(
      all,
      Array.from({ length: nTrain }, (_, i) => i),
    );
    const fresh = subset(
      all,
      Array.from({ length: all.ids.length - nTrain }, (_, i) => nTrain + i),
    );
    const grid = [1e-3, 3e-2, 1];
    const freshAccuracy = async (softmaxL2: number[], crossValidate: 'auto' | 'never') => {
      const r = await trainHead(input, { headTypes: ['softmax'], softmaxL2, crossValidate });
      const head = await loadHead(r.head);
      const probs = head.predict(fresh.features, fresh.ids.length);
      head.dispose();
      return { l2: r.config.l2, accuracy: computeMetrics(fresh.labels, probs, all.labelNames).accuracy };
    };
    const before = tf.memory().numTensors;
    const chosen = await freshAccuracy(grid, 'auto');
    expect(tf.memory().numTensors).toBe(before);
    const single = await freshAccuracy(grid, 'never');
    expect(single.l2).toBe(1e-3);
    const each = await Promise.all(grid.map(async (l2) => (await freshAccuracy([l2], 'never')).accuracy));
    const best = grid[each.indexOf(Math.max(...each))];
    expect(best).not.toBe(single.l2);
    expect(chosen.l2).toBe(best);
    expect(chosen.accuracy).toBeGreaterThan(single.accuracy);
  });
});
