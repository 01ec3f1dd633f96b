import { describe, expect, it } from 'vitest';
import {
  classWeights,
  createEarlyStopping,
  createRng,
  foldStandardization,
  IMPROVEMENT_TOLERANCE,
  labelCounts,
  shuffleInPlace,
  standardize,
  unfoldStandardization,
} from './numerics.js';

describe('standardize', () => {
  it('centres a constant column and leaves its scale at 1 instead of dividing by zero', () => {
    // Column 0 is constant at 1000.5; column 1 varies.
    const features = Float32Array.from([1000.5, 1, 1000.5, 3, 1000.5, 5]);
    const { mean, std } = standardize(features, 2, [0, 1, 2]);
    expect(Array.from(mean)).toEqual([1000.5, 3]);
    expect(std[0]).toBe(1);
    expect(std[1]).toBeCloseTo(Math.sqrt(8 / 3), 6);
  });

  it('keeps a small spread on a large offset, which a one-pass variance would lose', () => {
    const features = Float32Array.from([1e4 - 0.25, 1e4 + 0.25]);
    const { mean, std } = standardize(features, 1, [0, 1]);
    expect(mean[0]).toBe(1e4);
    expect(std[0]).toBe(0.25);
  });

  it('uses only the given rows', () => {
    const features = Float32Array.from([0, 2, 100]);
    const { mean, std } = standardize(features, 1, [0, 1]);
    expect(mean[0]).toBe(1);
    expect(std[0]).toBe(1);
  });
});

describe('standardization folding', () => {
  const standardization = { mean: Float32Array.from([10, -2, 0.5]), std: Float32Array.from([2, 0.5, 4]) };
  const kernel = Float32Array.from([1, -2, 0.25, 3, -1.5, 2]);
  const bias = Float32Array.from([0.5, -0.75]);

  it('computes on raw features what the unfolded layer computes on standardized ones', () => {
    const { kernel: fk, bias: fb } = foldStandardization(kernel, bias, standardization);
    const raw = [12, -1, 3];
    const z = raw.map((x, j) => (x - standardization.mean[j]!) / standardization.std[j]!);
    for (let c = 0; c < 2; c++) {
      const folded = raw.reduce((s, x, j) => s + x * fk[j * 2 + c]!, fb[c]!);
      const unfolded = z.reduce((s, x, j) => s + x * kernel[j * 2 + c]!, bias[c]!);
      expect(folded).toBeCloseTo(unfolded, 5);
    }
  });

  it('gives back the original layer when unfolded with the same standardization', () => {
    const folded = foldStandardization(kernel, bias, standardization);
    const back = unfoldStandardization(folded, standardization);
    for (const [i, v] of back.kernel.entries()) expect(v).toBeCloseTo(kernel[i]!, 6);
    for (const [i, v] of back.bias.entries()) expect(v).toBeCloseTo(bias[i]!, 5);
  });

  it('refuses a kernel whose size does not match the standardization', () => {
    expect(() => unfoldStandardization({ kernel: kernel.subarray(0, 4), bias }, standardization)).toThrow(
      expect.objectContaining({ code: 'invalid_head' }),
    );
  });
});

describe('class weights', () => {
  it('gives every label the same total weight when balanced, and 1 to a label without examples', () => {
    const y = [0, 0, 0, 0, 0, 0, 1, 1, 2, 0];
    const counts = labelCounts(y, 4);
    expect(counts).toEqual([7, 2, 1, 0]);
    const w = classWeights(counts, 'balanced');
    // n / (labels * n_label) with n = 10 and 4 labels.
    expect(Array.from(w)).toEqual([10 / 28, 10 / 8, 10 / 4, 1].map(Math.fround));
    expect(w[0]! * 7).toBeCloseTo(w[1]! * 2, 6);
    expect(w[1]! * 2).toBeCloseTo(w[2]! * 1, 6);
  });

  it('takes the square root of the balanced weights with sqrt, so a rare label gains less than balanced gives it', () => {
    const balanced = classWeights([7, 2, 1, 0], 'balanced');
    const sqrt = classWeights([7, 2, 1, 0], 'sqrt');
    expect(Array.from(sqrt)).toEqual(
      Array.from(balanced, (b, i) => (i === 3 ? 1 : Math.fround(Math.sqrt(b)))),
    );
    // The rare label's total weight over the common one's: 1/7 unweighted, 1 balanced, and sqrt in between.
    const share = (w: Float32Array) => (w[2]! * 1) / (w[0]! * 7);
    expect(share(sqrt)).toBeGreaterThan(share(classWeights([7, 2, 1], 'none')));
    expect(share(sqrt)).toBeLessThan(share(balanced));
  });

  it('weighs every example 1 without weighting, and counts only the given rows', () => {
    expect(Array.from(classWeights([7, 2, 1], 'none'))).toEqual([1, 1, 1]);
    expect(labelCounts([0, 1, 1, 2, 2, 2], 3, [1, 3, 5])).toEqual([0, 1, 2]);
  });
});

describe('early stopping', () => {
  it('counts the first loss as progress', () => {
    const stopper = createEarlyStopping({ patience: 1 });
    expect(stopper.record(0.7, 0)).toBe(true);
    expect(stopper.exhausted).toBe(false);
    expect(stopper.best).toBe(0.7);
  });

  it('resets patience for a gain just above the tolerance and not for one just below it, keeping both', () => {
    const tol = IMPROVEMENT_TOLERANCE;
    const below = createEarlyStopping({ patience: 1 });
    below.record(0.5, 0);
    expect(below.record(0.5 - 0.9 * tol, 1)).toBe(true);
    expect(below.bestEpoch).toBe(1);
    expect(below.exhausted).toBe(true);

    const above = createEarlyStopping({ patience: 1 });
    above.record(0.5, 0);
    expect(above.record(0.5 - 1.1 * tol, 1)).toBe(true);
    expect(above.exhausted).toBe(false);
  });

  it('scales the tolerance with a loss above 1', () => {
    const tol = IMPROVEMENT_TOLERANCE;
    const stopper = createEarlyStopping({ patience: 1 });
    stopper.record(20, 0);
    // 20 * tol is the threshold here: a gain of 10 * tol is noise at this scale.
    stopper.record(20 - 10 * tol, 1);
    expect(stopper.exhausted).toBe(true);
    const again = createEarlyStopping({ patience: 1 });
    again.record(20, 0);
    again.record(20 - 21 * tol, 1);
    expect(again.exhausted).toBe(false);
  });

  it('stops after patience records without progress, remembering the best epoch', () => {
    const stopper = createEarlyStopping({ patience: 2 });
    for (const [epoch, loss] of [0.9, 0.6, 0.65, 0.7].entries()) stopper.record(loss, epoch);
    expect(stopper.exhausted).toBe(true);
    expect(stopper.best).toBe(0.6);
    expect(stopper.bestEpoch).toBe(1);
  });

  it('never takes a NaN loss as the best', () => {
    const stopper = createEarlyStopping({ patience: 3 });
    stopper.record(0.4, 0);
    expect(stopper.record(Number.NaN, 1)).toBe(false);
    expect(stopper.best).toBe(0.4);
  });
});

describe('shuffle', () => {
  const shuffled = (seed: number) => shuffleInPlace([...Array(50).keys()], createRng(seed));

  it('gives the same permutation for the same seed and another for another seed', () => {
    expect(shuffled(42)).toEqual(shuffled(42));
    expect(shuffled(43)).not.toEqual(shuffled(42));
    expect([...shuffled(42)].sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
  });

  it('draws one number per position but the first, so later draws from the generator stay the same', () => {
    const rng = createRng(9);
    shuffleInPlace([...Array(10).keys()], rng);
    const reference = createRng(9);
    for (let i = 0; i < 9; i++) reference();
    expect(rng()).toBe(reference());
  });
});
