import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initTf } from '../tf/tf-runtime.js';
import { findLabelSuspects } from './label-suspects.js';
import { createRng } from './numerics.js';
import { gaussianBlobs } from './synthetic-blobs.js';
import { type TrainConfig, trainHead } from './train-head.js';

beforeAll(async () => {
  await initTf();
});

/** Blobs with the labels of `planted` rows moved to the next label. */
function noisyBlobs(planted: number[]) {
  const data = gaussianBlobs({ perLabel: 30, labels: 3, dim: 8, separation: 4, seed: 11 });
  const labels = Int32Array.from(data.labels);
  for (const r of planted) labels[r] = (labels[r]! + 1) % 3;
  return { ...data, labels };
}

describe('label suspects', () => {
  it('ranks photos whose label was moved first, each with the label it looks like', async () => {
    const planted = [0, 31, 62, 75];
    const input = noisyBlobs(planted);
    const original = gaussianBlobs({ perLabel: 30, labels: 3, dim: 8, separation: 4, seed: 11 }).labels;
    const { config } = await trainHead(input, { headTypes: ['softmax'], softmaxL2: [1e-3, 1e-2] });
    const before = tf.memory().numTensors;
    const found = await findLabelSuspects(input, { config });
    expect(tf.memory().numTensors).toBe(before);
    expect(found).toMatchObject({ folds: 5, photos: 90 });
    const top = found.suspects.slice(0, planted.length);
    expect(top.map((s) => s.row).sort((a, b) => a - b)).toEqual(planted);
    for (const s of top) {
      expect(s.suspected).toBe(original[s.row]);
      expect(s.confidence).toBeGreaterThan(0.5);
      expect(s.labelScore).toBeLessThan(s.confidence);
    }
    const scores = found.suspects.map((s) => s.labelScore);
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
  });

  it('scores each photo once and never an augmented view, which trains with its photo', async () => {
    const base = noisyBlobs([5]);
    const n = base.ids.length;
    const input = {
      ...base,
      features: new Float32Array([...base.features, ...base.features.subarray(0, 10 * base.dim)]),
      labels: [...base.labels, ...base.labels.subarray(0, 10)],
      ids: [...base.ids, ...base.ids.slice(0, 10).map((id) => `${id}.hflip`)],
    };
    const { config } = await trainHead(input, { headTypes: ['softmax'], softmaxL2: [1e-2] });
    const found = await findLabelSuspects(input, { config });
    expect(found.photos).toBe(n);
    expect(found.suspects.every((s) => s.row < n)).toBe(true);
    expect(found.suspects[0]!.row).toBe(5);
  });
});

describe('label suspects of large sparse inputs', () => {
  it('predicts text inputs past 500,000 non-zeros out of 3 folds, every row once, and finds a moved label', async () => {
    const n = 2100;
    const perRow = 250;
    const dim = 4096;
    const rng = createRng(4);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
    const indptr = Int32Array.from({ length: n + 1 }, (_, i) => i * perRow);
    const indices = new Int32Array(n * perRow);
    const values = new Float32Array(n * perRow).fill(0.06);
    for (let i = 0; i < n; i++) {
      // Each label owns a third of the columns; a row draws its columns from its label's third.
      const cols = new Set<number>();
      while (cols.size < perRow) cols.add(labels[i]! * 1365 + Math.floor(rng() * 1365));
      indices.set(
        [...cols].sort((a, b) => a - b),
        i * perRow,
      );
    }
    const moved = 7;
    const given = Int32Array.from(labels);
    given[moved] = (labels[moved]! + 1) % 3;
    const input = {
      features: new Float32Array(0),
      sparse: { indptr, indices, values },
      dim,
      labels: given,
      labelNames: ['a', 'b', 'c'],
      ids: Array.from({ length: n }, (_, i) => i.toString(16).padStart(64, '0')),
    };
    const config: TrainConfig = {
      headType: 'softmax',
      l2: 1e-5,
      epochs: 4,
      classWeight: 'balanced',
      selectBy: 'loss',
      mlpMargin: 0.1,
      selection: 'validation-split',
      refit: true,
      refitL2: 1e-5,
      nTrain: 1680,
      nValidation: 420,
      seed: 42,
    };
    const found = await findLabelSuspects(input, { config });
    expect(found).toMatchObject({ folds: 3, photos: n });
    expect(found.suspects[0]).toMatchObject({ row: moved, suspected: labels[moved] });
  });
});
