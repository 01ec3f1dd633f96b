import { beforeAll, describe, expect, it } from 'vitest';
import { initTf, tf } from '../tf/tf-runtime.js';
import { gaussianBlobs } from '../train/synthetic-blobs.js';
import {
  auroc,
  calibrateForTraining,
  calibrateOutlierDetector,
  calibrateTextForTraining,
  DOUBT_SCALE_QUANTILE,
  decodeOutlierDetector,
  encodeOutlierDetector,
  featurePartOf,
  fitOutlierDetector,
  MIN_DOUBT_SCALE,
  OUTLIER_METHODS,
  OutlierError,
  type OutlierParams,
  sketchDenseRows,
  sketchSparseRows,
  softmaxScores,
  usesDoubt,
} from './index.js';
import { symmetricEigen } from './small-linalg.js';

beforeAll(async () => {
  await initTf();
});

// Five labels in 40 dimensions; label 4 is held out of fitting and stands in for a label never trained on.
const blobs = gaussianBlobs({
  perLabel: 60,
  labels: 5,
  dim: 40,
  separation: 4,
  seed: 7,
  offset: 3,
  scale: 2,
});
const rowsWhere = (pred: (label: number, i: number) => boolean) =>
  Array.from(blobs.labels).flatMap((l, i) => (pred(l, i) ? [i] : []));
const pick = (rows: number[]) => {
  const out = new Float32Array(rows.length * blobs.dim);
  rows.forEach((r, j) => {
    out.set(blobs.features.subarray(r * blobs.dim, (r + 1) * blobs.dim), j * blobs.dim);
  });
  return out;
};
const train = rowsWhere((l, i) => l < 4 && i % 3 !== 0);
const validation = rowsWhere((l, i) => l < 4 && i % 3 === 0);
const heldOut = rowsWhere((l) => l === 4);

/** Fitted on the training rows, threshold set on the validation rows. */
const calibrated = () =>
  calibrateOutlierDetector({
    features: blobs.features,
    dim: blobs.dim,
    labels: blobs.labels,
    trainRows: train,
    validationRows: validation,
  });

describe('fitOutlierDetector', () => {
  // The doubt method needs a head's probabilities and a calibrated scale: see 'the head doubt' below.
  it.each(OUTLIER_METHODS.filter((m) => !usesDoubt(m)))(
    'with %s scores a label never fitted above the fitted ones',
    (method) => {
      const d = fitOutlierDetector({
        features: pick(train),
        dim: blobs.dim,
        labels: train.map((r) => blobs.labels[r]!),
        method,
        components: 16,
      });
      const a = auroc(d.score(pick(validation), validation.length), d.score(pick(heldOut), heldOut.length));
      expect(a).toBeGreaterThan(0.9);
    },
  );

  it('scores noise far from every label above the calibrated threshold', () => {
    const { detector } = calibrated();
    const noise = Float32Array.from({ length: 5 * blobs.dim }, (_, i) => ((i * 7919) % 101) - 50);
    for (const s of detector!.score(noise, 5)) expect(s).toBeGreaterThan(detector!.threshold!);
  });

  it('measures k-NN distances to at most maxNeighbours training photos, still scoring a label never fitted higher', () => {
    const d = fitOutlierDetector({
      features: pick(train),
      dim: blobs.dim,
      labels: train.map((r) => blobs.labels[r]!),
      method: 'knn',
      components: 16,
      maxNeighbours: 100,
    });
    expect(d.params.neighbours.length).toBe(100 * d.params.k);
    const median = (v: Float32Array) => Float32Array.from(v).sort()[v.length >> 1]!;
    expect(median(d.score(pick(heldOut), heldOut.length))).toBeGreaterThan(
      median(d.score(pick(validation), validation.length)),
    );
  });

  it('refuses rows of the wrong width with a code', () => {
    const d = fitOutlierDetector({
      features: pick(train),
      dim: blobs.dim,
      labels: train.map((r) => blobs.labels[r]!),
    });
    expect(() => d.score(new Float32Array(blobs.dim + 1), 1)).toThrow(OutlierError);
  });

  it('leaves no tensors behind when fitting or scoring', () => {
    const before = tf.memory().numTensors;
    const d = fitOutlierDetector({
      features: pick(train),
      dim: blobs.dim,
      labels: train.map((r) => blobs.labels[r]!),
    });
    d.score(pick(validation), validation.length);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('calibration', () => {
  const calibrate = (validationRows: number[], withLabelNames = true) =>
    calibrateOutlierDetector({
      features: blobs.features,
      dim: blobs.dim,
      labels: blobs.labels,
      trainRows: train,
      validationRows,
      ...(withLabelNames ? { labelNames: blobs.labelNames } : {}),
    });

  it('sets the threshold so at least 95% of validation photos are accepted, and reports a held-out AUROC', () => {
    const { detector, report } = calibrate(validation);
    if (report.method === null) throw new Error(report.reason);
    const scores = detector!.score(pick(validation), validation.length);
    const accepted = scores.filter((s) => s <= detector!.threshold!).length / scores.length;
    expect(accepted).toBeGreaterThanOrEqual(0.95);
    expect(accepted).toBeLessThan(1);
    expect(report.acceptedRate).toBeCloseTo(accepted, 6);
    expect(report.heldOutAuroc!.perLabel).toHaveLength(2);
    expect(report.heldOutAuroc!.mean!).toBeGreaterThan(0.9);
  });

  it('stores no detector, and says why, with fewer than 10 validation photos', () => {
    const { detector, report } = calibrate(validation.slice(0, 9), false);
    expect(detector).toBeNull();
    expect(report).toMatchObject({ method: null, reason: expect.stringMatching(/9 validation photos/) });
  });

  it('stores no detector without a validation split', () => {
    const r = calibrateForTraining({ ...blobs, validationIds: undefined });
    expect(r.detector).toBeNull();
    expect(r.report.method).toBeNull();
  });
});

describe('the head doubt', () => {
  // A stand-in head over the four fitted labels: sure of `sure` rows, split between two labels on the others.
  const probsOf = (rows: number[], sure: (r: number) => boolean) =>
    Float32Array.from(
      rows.flatMap((r) => {
        const top = sure(r) ? 0.97 : 0.45;
        const rest = (1 - top - (sure(r) ? 0 : 0.4)) / (sure(r) ? 3 : 2);
        const row = [rest, rest, rest, rest];
        row[blobs.labels[r]! % 4] = top;
        if (!sure(r)) row[(blobs.labels[r]! + 1) % 4] = 0.4;
        return row;
      }),
    );
  // One validation photo in five is one the head is unsure of.
  const unsureValidation = (r: number) => r % 5 === 0;
  const calibrate = (validationProbs?: Float32Array) =>
    calibrateOutlierDetector({
      features: blobs.features,
      dim: blobs.dim,
      labels: blobs.labels,
      labelNames: blobs.labelNames,
      trainRows: train,
      validationRows: validation,
      method: 'mahalanobis+residual+doubt',
      components: 16,
      ...(validationProbs ? { validationProbs } : {}),
    });

  it('scales the doubt by a high quantile of it on validation, keeps 95% of validation photos, and checks held-out labels on the features', () => {
    const probs = probsOf(validation, (r) => !unsureValidation(r));
    const { detector, report } = calibrate(probs);
    if (report.method === null) throw new Error(report.reason);
    expect(report.method).toBe('mahalanobis+residual+doubt');
    const doubt = Float32Array.from(softmaxScores(probs, 4)).sort();
    const at = Math.floor(DOUBT_SCALE_QUANTILE * doubt.length);
    expect(detector!.params).toMatchObject({ doubtScale: Math.max(MIN_DOUBT_SCALE, doubt[at]!) });
    const scores = detector!.score(pick(validation), validation.length, probs);
    expect(scores.filter((s) => s <= detector!.threshold!).length / scores.length).toBeGreaterThanOrEqual(
      0.95,
    );
    expect(report.heldOutAuroc).toMatchObject({ scored: featurePartOf('mahalanobis+residual+doubt') });
  });

  it('scores a photo the head is unsure of above the same photo when the head is sure of it', () => {
    const { detector } = calibrate(probsOf(validation, (r) => !unsureValidation(r)));
    const rows = validation.slice(0, 8);
    const sure = detector!.score(
      pick(rows),
      rows.length,
      probsOf(rows, () => true),
    );
    const unsure = detector!.score(
      pick(rows),
      rows.length,
      probsOf(rows, () => false),
    );
    rows.forEach((_, i) => {
      expect(unsure[i]!).toBeGreaterThan(sure[i]!);
    });
  });

  it('tells a label never fitted from the fitted ones better with the doubt than without, when the head is unsure of it', () => {
    const probs = probsOf(validation, (r) => !unsureValidation(r));
    const { detector } = calibrate(probs);
    const features = fitOutlierDetector({
      features: pick(train),
      dim: blobs.dim,
      labels: train.map((r) => blobs.labels[r]!),
      components: 16,
    });
    const inRows = validation;
    const outProbs = probsOf(heldOut, () => false);
    const withDoubt = auroc(
      detector!.score(pick(inRows), inRows.length, probs),
      detector!.score(pick(heldOut), heldOut.length, outProbs),
    );
    const alone = auroc(
      features.score(pick(inRows), inRows.length),
      features.score(pick(heldOut), heldOut.length),
    );
    expect(withDoubt).toBeGreaterThanOrEqual(alone);
    expect(withDoubt).toBeGreaterThan(0.9);
  });

  it('refuses to calibrate or score without the head probabilities, naming what it needs', () => {
    expect(calibrate()).toMatchObject({
      detector: null,
      report: { method: null, reason: expect.stringMatching(/probabilities of the \d+ validation rows/) },
    });
    const { detector } = calibrate(probsOf(validation, () => true));
    expect(() => detector!.score(pick(validation), validation.length)).toThrow(/probabilities/);
  });

  it('survives its files with its scale, and a descriptor without the scale is refused', () => {
    const probs = probsOf(validation, (r) => !unsureValidation(r));
    const { detector } = calibrate(probs);
    const { json, weights } = encodeOutlierDetector(detector!);
    const back = decodeOutlierDetector(new TextEncoder().encode(json), weights);
    expect(back.score(pick(validation), validation.length, probs)).toEqual(
      detector!.score(pick(validation), validation.length, probs),
    );
    const { doubtScale: _, ...rest } = JSON.parse(json);
    expect(() => decodeOutlierDetector(new TextEncoder().encode(JSON.stringify(rest)), weights)).toThrow(
      /no doubtScale/,
    );
  });

  it('is what a training stores when it has the validation predictions, and the features alone when not', () => {
    const ids = blobs.ids;
    const validationIds = validation.map((r) => ids[r]!);
    const predictions = { ids: validationIds, probs: probsOf(validation, (r) => !unsureValidation(r)) };
    const rows = [...train, ...validation];
    const input = {
      features: pick(rows),
      dim: blobs.dim,
      labels: rows.map((r) => blobs.labels[r]!),
      labelNames: blobs.labelNames.slice(0, 4),
      ids: rows.map((r) => ids[r]!),
      validationIds,
    };
    expect(calibrateForTraining({ ...input, validationPredictions: predictions }).report).toMatchObject({
      method: 'mahalanobis+residual+doubt',
    });
    expect(calibrateForTraining(input).report).toMatchObject({ method: 'mahalanobis+residual' });
    // Predictions that miss a validation photo: the features alone, not a detector that cannot score it.
    const partial = { ids: validationIds.slice(1), probs: predictions.probs.slice(4) };
    expect(calibrateForTraining({ ...input, validationPredictions: partial }).report).toMatchObject({
      method: 'mahalanobis+residual',
    });
  });
});

describe('the detector files', () => {
  it('decode to a detector that scores exactly as the fitted one', () => {
    const { detector } = calibrated();
    const { json, weights } = encodeOutlierDetector(detector!);
    const back = decodeOutlierDetector(new TextEncoder().encode(json), weights);
    expect(back.threshold).toBe(detector!.threshold);
    expect(back.score(pick(heldOut), heldOut.length)).toEqual(detector!.score(pick(heldOut), heldOut.length));
  });

  it('refuse weights of the wrong length', () => {
    const d = fitOutlierDetector({
      features: pick(train),
      dim: blobs.dim,
      labels: train.map((r) => blobs.labels[r]!),
    });
    const { json, weights } = encodeOutlierDetector(d);
    expect(() => decodeOutlierDetector(new TextEncoder().encode(json), weights.slice(4))).toThrow(/bytes/);
  });
});

describe('symmetricEigen', () => {
  it('reconstructs the matrix from its eigenpairs, largest first', () => {
    const k = 6;
    const m = new Float64Array(k * k);
    for (let i = 0; i < k; i++)
      for (let j = 0; j <= i; j++) m[i * k + j] = m[j * k + i] = Math.sin(i * 3 + j) + (i === j ? 4 : 0);
    const { values, vectors } = symmetricEigen(m, k);
    for (let i = 1; i < k; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let e = 0; e < k; e++) s += values[e]! * vectors[e * k + i]! * vectors[e * k + j]!;
        expect(s).toBeCloseTo(m[i * k + j]!, 8);
      }
    }
  });
});

describe('degenerate input', () => {
  it('ranks scores that include NaN without stalling', () => {
    expect(Number.isNaN(auroc([Number.NaN, 1, 1], [2, Number.NaN]))).toBe(false);
  });

  // Methods with a residual part are left out: with every direction kept, their residual is rounding noise.
  it.each(['knn', 'mahalanobis', 'relative-mahalanobis'] as const)(
    'with %s scores wide features (subspace iteration) as it scores their narrow form (exact basis)',
    (method) => {
      // The blobs padded with 200 zero columns: past 160 features the basis comes from subspace iteration, which
      // must find the same 40 directions the exact decomposition of the 40 columns does.
      const wide = 240;
      const pad = (rows: Float32Array, n: number) => {
        const out = new Float32Array(n * wide);
        for (let i = 0; i < n; i++) out.set(rows.subarray(i * blobs.dim, (i + 1) * blobs.dim), i * wide);
        return out;
      };
      const fitWith = (features: Float32Array, dim: number) =>
        fitOutlierDetector({
          features,
          dim,
          labels: train.map((r) => blobs.labels[r]!),
          method,
          components: 48,
        });
      const narrow = fitWith(pick(train), blobs.dim);
      const broad = fitWith(pad(pick(train), train.length), wide);
      expect(broad.params.k).toBe(narrow.params.k);
      const queries = [...validation, ...heldOut];
      const a = narrow.score(pick(queries), queries.length);
      const b = broad.score(pad(pick(queries), queries.length), queries.length);
      a.forEach((v, i) => {
        expect(b[i]!).toBeCloseTo(v, 2);
      });
    },
  );

  it('fits features of lower rank than its components (few photos, few directions) with finite scores', () => {
    // 16 features of 20 photos in 3 labels, spanning fewer directions than the 16 components asked for: the
    // directions the photos do not span are dropped instead of whitened into NaN.
    const dim = 16;
    const labels = Int32Array.from({ length: 30 }, (_, i) => Math.floor(i / 10));
    const features = Float32Array.from({ length: 30 * dim }, (_, j) => {
      const [i, d] = [Math.floor(j / dim), j % dim];
      return (d % 3 === labels[i]! ? 2 : 0) + Math.sin(d * 7 + (i % 10)) * 0.3;
    });
    const rows = [...labels.keys()];
    const { detector, report, validationScores } = calibrateOutlierDetector({
      features,
      dim,
      labels,
      trainRows: rows.filter((i) => i % 3 !== 0),
      validationRows: [...rows.filter((i) => i % 3 === 0), ...rows.filter((i) => i % 3 === 0)],
      labelNames: ['a', 'b', 'c'],
      components: 16,
    });
    expect(detector).not.toBeNull();
    expect((detector!.params as OutlierParams).k).toBeLessThan(16);
    expect(validationScores!.every(Number.isFinite)).toBe(true);
    expect(report).toMatchObject({ method: 'mahalanobis+residual', acceptedRate: expect.any(Number) });
  });

  it('stores no detector, and says why, when the features do not vary at all', () => {
    const dim = 8;
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
    const rows = [...labels.keys()];
    const { detector, report } = calibrateOutlierDetector({
      features: new Float32Array(30 * dim).fill(0.5),
      dim,
      labels,
      trainRows: rows.filter((i) => i % 3 !== 0),
      validationRows: rows.filter((i) => i % 3 === 0).concat(rows.filter((i) => i % 3 === 0)),
    });
    expect(detector).toBeNull();
    expect(report).toMatchObject({ method: null, reason: expect.stringMatching(/do not vary/) });
  });
});

describe('the text sketch', () => {
  // Rows like a text version's: 6 dense columns, then 200 sparse "n-gram" columns, a few non-zero each.
  const inputDim = 206;
  const spec = { inputDim, keep: 6, sketch: 16, seed: 1 };
  const sparseRows = (n: number, offset: number) => {
    const indptr = new Int32Array(n + 1);
    const indices: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < 6; d++) {
        indices.push(d);
        values.push(Math.sin(i * 3 + d + offset) + (d === i % 3 ? 2 : 0));
      }
      for (const c of [6 + ((i * 7) % 200), 6 + ((i * 13 + 5) % 200), 6 + ((i * 31 + offset) % 200)].sort(
        (a, b) => a - b,
      )) {
        if (indices.at(-1) === c) continue;
        indices.push(c);
        values.push(0.5);
      }
      indptr[i + 1] = indices.length;
    }
    return { indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) };
  };
  const densified = (rows: ReturnType<typeof sparseRows>) => {
    const n = rows.indptr.length - 1;
    const out = new Float32Array(n * inputDim);
    for (let i = 0; i < n; i++)
      for (let p = rows.indptr[i]!; p < rows.indptr[i + 1]!; p++)
        out[i * inputDim + rows.indices[p]!] = rows.values[p]!;
    return out;
  };

  it('narrows sparse rows exactly as it narrows their dense form', () => {
    const rows = sparseRows(20, 0);
    expect(Array.from(sketchSparseRows(rows, spec))).toEqual(
      Array.from(sketchDenseRows(densified(rows), 20, spec)),
    );
  });

  it('is stored with the detector, which then scores the full rows as the head takes them', () => {
    const rows = sparseRows(90, 0);
    const ids = Array.from({ length: 90 }, (_, i) => `t${i}`);
    const { detector } = calibrateTextForTraining({
      sparse: rows,
      feature: { inputDim, denseDim: 6 },
      labels: Array.from({ length: 90 }, (_, i) => i % 3),
      labelNames: ['a', 'b', 'c'],
      ids,
      validationIds: ids.filter((_, i) => i % 4 === 0),
    });
    expect(detector!.inputDim).toBe(inputDim);
    const { json, weights } = encodeOutlierDetector(detector!);
    const back = decodeOutlierDetector(new TextEncoder().encode(json), weights);
    expect((back.params as OutlierParams).sketch).toEqual((detector!.params as OutlierParams).sketch);
    const probe = densified(sparseRows(5, 1));
    expect(Array.from(back.score(probe, 5))).toEqual(Array.from(detector!.score(probe, 5)));
    expect(() => back.score(new Float32Array(6), 1)).toThrow(OutlierError);
  });

  it('refuses a descriptor whose sketch does not give the width it scores', () => {
    const rows = sparseRows(30, 0);
    const d = fitOutlierDetector({
      features: sketchSparseRows(rows, spec),
      dim: 22,
      labels: Array.from({ length: 30 }, (_, i) => i % 3),
      sketch: spec,
    });
    const { json, weights } = encodeOutlierDetector(d);
    const bad = JSON.stringify({ ...JSON.parse(json), sketch: { ...spec, sketch: 8 } });
    expect(() => decodeOutlierDetector(new TextEncoder().encode(bad), weights)).toThrow(/sketches to 14/);
  });
});
