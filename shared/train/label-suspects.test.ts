import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initTf } from '../tf/tf-runtime.js';
import { findLabelSuspects } from './label-suspects.js';
import { gaussianBlobs } from './synthetic-blobs.js';
import { trainHead } from './train-head.js';

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
