import { describe, expect, it } from 'vitest';
import {
  CROSS_VALIDATION_BELOW_PER_LABEL,
  needsCrossValidation,
  stratifiedFolds,
} from './cross-validation.js';
import { gaussianBlobs } from './synthetic-blobs.js';

const data = gaussianBlobs({ perLabel: [23, 41, 9], labels: 3, dim: 2, separation: 1, seed: 3 });
const all = data.ids.map((_, i) => i);

describe('stratifiedFolds', () => {
  it('validates every example exactly once, and trains it in every other fold', () => {
    const folds = stratifiedFolds(data.ids, data.labels, all, 5);
    const validated = folds.flatMap((f) => f.validation).sort((a, b) => a - b);
    expect(validated).toEqual(all);
    for (const f of folds) {
      expect(new Set([...f.train, ...f.validation]).size).toBe(all.length);
      expect(f.train.filter((r) => f.validation.includes(r))).toEqual([]);
    }
  });

  it("holds each label's share in every fold to within one example", () => {
    const folds = stratifiedFolds(data.ids, data.labels, all, 5);
    for (const [label, count] of [23, 41, 9].entries()) {
      const perFold = folds.map((f) => f.validation.filter((r) => data.labels[r] === label).length);
      expect(Math.max(...perFold) - Math.min(...perFold)).toBeLessThanOrEqual(1);
      expect(perFold.reduce((a, b) => a + b, 0)).toBe(count);
    }
  });

  it('puts each photo in the same fold whatever the input order', () => {
    const foldOfId = (ids: string[], labels: ArrayLike<number>) => {
      const folds = stratifiedFolds(
        ids,
        labels,
        ids.map((_, i) => i),
        5,
      );
      const out = new Map<string, number>();
      folds.forEach((f, fi) => {
        for (const r of f.validation) out.set(ids[r]!, fi);
      });
      return out;
    };
    const reversed = [...all].reverse();
    const a = foldOfId(data.ids, data.labels);
    const b = foldOfId(
      reversed.map((r) => data.ids[r]!),
      reversed.map((r) => data.labels[r]!),
    );
    expect([...b.entries()].sort()).toEqual([...a.entries()].sort());
  });

  it('trains a view where its photo trains and never validates on it', () => {
    const ids = [...data.ids, `${data.ids[0]}.hflip`, `${data.ids[1]}.hflip`];
    const labels = [...data.labels, data.labels[0]!, data.labels[1]!];
    const rows = ids.map((_, i) => i);
    const view0 = all.length;
    for (const f of stratifiedFolds(ids, labels, rows, 5)) {
      expect(f.validation).not.toContain(view0);
      expect(f.validation).not.toContain(view0 + 1);
      expect(f.train.includes(view0)).toBe(f.train.includes(0));
      expect(f.train.includes(view0 + 1)).toBe(f.train.includes(1));
    }
  });
});

describe('needsCrossValidation', () => {
  it('asks for cross-validation exactly when some label has fewer than 50 validation examples', () => {
    expect(CROSS_VALIDATION_BELOW_PER_LABEL).toBe(50);
    expect(needsCrossValidation([200, 49, 300])).toBe(true);
    expect(needsCrossValidation([50, 50, 51])).toBe(false);
  });
});
