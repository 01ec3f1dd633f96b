import { describe, expect, it } from 'vitest';
import { computeMetrics } from './metrics.js';

describe('computeMetrics', () => {
  // Three labels, five examples. Predictions (argmax): 0, 0, 1, 2, 1 against truth 0, 1, 1, 2, 2.
  const yTrue = [0, 1, 1, 2, 2];
  const probs = [
    [0.9, 0.05, 0.05],
    [0.6, 0.3, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.1, 0.8],
    [0.3, 0.5, 0.2],
  ].flat();
  const metrics = computeMetrics(yTrue, probs, ['a', 'b', 'c']);

  it('counts a confusion matrix with true labels as rows', () => {
    expect(metrics.confusion).toEqual([
      [1, 0, 0],
      [1, 1, 0],
      [0, 1, 1],
    ]);
    expect(metrics.accuracy).toBeCloseTo(3 / 5, 12);
  });

  it('computes per-label precision, recall, F1 and support', () => {
    const [a, b, c] = metrics.perLabel;
    expect(a).toMatchObject({ label: 'a', support: 1, recall: 1 });
    expect(a!.precision).toBeCloseTo(1 / 2, 12);
    expect(a!.f1).toBeCloseTo(2 / 3, 12);
    expect(b).toMatchObject({ label: 'b', support: 2 });
    expect(b!.precision).toBeCloseTo(1 / 2, 12);
    expect(b!.recall).toBeCloseTo(1 / 2, 12);
    expect(b!.f1).toBeCloseTo(1 / 2, 12);
    expect(c).toMatchObject({ label: 'c', support: 2, precision: 1 });
    expect(c!.recall).toBeCloseTo(1 / 2, 12);
    expect(c!.f1).toBeCloseTo(2 / 3, 12);
    expect(metrics.macroF1).toBeCloseTo((2 / 3 + 1 / 2 + 2 / 3) / 3, 12);
  });

  it('computes log loss from the probability of the true label', () => {
    const expected = -(Math.log(0.9) + Math.log(0.3) + Math.log(0.7) + Math.log(0.8) + Math.log(0.2)) / 5;
    expect(metrics.logLoss).toBeCloseTo(expected, 6);
  });

  it('computes expected calibration error over 15 equal-width confidence bins', () => {
    // Confidences 0.9, 0.6, 0.7, 0.8, 0.5 land in bins (0.867,0.933], (0.533,0.6], (0.667,0.733], (0.733,0.8],
    // (0.467,0.533]: one each, so ECE is the mean of |correct - confidence|.
    const expected =
      (Math.abs(1 - 0.9) + Math.abs(0 - 0.6) + Math.abs(1 - 0.7) + Math.abs(1 - 0.8) + 0.5) / 5;
    expect(metrics.ece).toBeCloseTo(expected, 6);
  });

  it('pools examples that share a bin before comparing accuracy with confidence', () => {
    // Both at confidence 0.95 (same bin), one right and one wrong: |0.5 - 0.95| = 0.45.
    const m = computeMetrics([0, 1], [0.95, 0.05, 0.95, 0.05], ['x', 'y']);
    expect(m.ece).toBeCloseTo(0.45, 6);
  });

  it('scores a label that is never predicted with precision 0 and F1 0', () => {
    const m = computeMetrics([0, 1], [0.8, 0.2, 0.7, 0.3], ['x', 'y']);
    expect(m.perLabel[1]).toEqual({ label: 'y', precision: 0, recall: 0, f1: 0, support: 1 });
    expect(m.perLabel[0]!.precision).toBeCloseTo(0.5, 12);
  });

  it('refuses probabilities that do not match the labels', () => {
    expect(() => computeMetrics([0, 1], [0.5, 0.5], ['x', 'y'])).toThrow(/probabilities/);
  });
});
