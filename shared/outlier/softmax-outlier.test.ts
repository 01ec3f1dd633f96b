import { describe, expect, it } from 'vitest';
import {
  calibrateSoftmaxForTraining,
  createSoftmaxOutlierDetector,
  decodeOutlierDetector,
  encodeOutlierDetector,
  OutlierError,
  softmaxScores,
} from './index.js';

const rows = (n: number, dim: number) => new Float32Array(n * dim);
/** n rows of 3-label probabilities whose top one is `top[i]`, the rest shared equally. */
const probsWithTop = (top: number[]) => Float32Array.from(top.flatMap((t) => [t, (1 - t) / 2, (1 - t) / 2]));

describe('the softmax outlier detector', () => {
  it('scores 1 minus the top probability, higher for a less sure head', () => {
    const d = createSoftmaxOutlierDetector({ method: 'msp', dim: 4, labels: 3, threshold: 0.5 });
    const scores = d.score(rows(3, 4), 3, probsWithTop([0.9, 0.6, 0.34]));
    expect(Array.from(scores).map((s) => Number(s.toFixed(5)))).toEqual([0.1, 0.4, 0.66]);
    expect(d.threshold).toBe(0.5);
  });

  it('refuses to score without the probabilities, or rows of the wrong width, with a code', () => {
    const d = createSoftmaxOutlierDetector({ method: 'msp', dim: 4, labels: 3, threshold: 0.5 });
    expect(() => d.score(rows(2, 4), 2)).toThrow(OutlierError);
    expect(() => d.score(rows(2, 4), 2, new Float32Array(3))).toThrow(/expected 2 x 3/);
    expect(() => d.score(rows(2, 5), 2, probsWithTop([0.5, 0.5]))).toThrow(/expected 2 x 4 features/);
  });

  it('round-trips through its files with an empty weights file, and refuses weights it should not have', () => {
    const d = createSoftmaxOutlierDetector({ method: 'msp', dim: 4, labels: 3, threshold: 0.25 });
    const { json, weights } = encodeOutlierDetector(d);
    expect(weights.byteLength).toBe(0);
    const back = decodeOutlierDetector(new TextEncoder().encode(json), weights);
    expect(back.params).toEqual(d.params);
    expect(back.inputDim).toBe(4);
    expect(() => decodeOutlierDetector(new TextEncoder().encode(json), new Uint8Array(8))).toThrow(
      /has no weights, but its weights file has 8 bytes/,
    );
    const oneLabel = json.replace('"labels":3', '"labels":1');
    expect(() => decodeOutlierDetector(new TextEncoder().encode(oneLabel), weights)).toThrow(OutlierError);
  });
});

describe('calibrateSoftmaxForTraining', () => {
  const ids = Array.from({ length: 40 }, (_, i) => `v${i}`);
  // Tops from 0.99 down to 0.60: the least sure validation texts have the highest scores.
  const validation = { ids, probs: probsWithTop(ids.map((_, i) => 0.99 - i * 0.01)) };

  it('sets the threshold so 95% of the validation texts are accepted, and gives each its score', () => {
    const { detector, report, scoreOf } = calibrateSoftmaxForTraining({ validation, labels: 3, inputDim: 4 });
    expect(detector?.method).toBe('msp');
    expect(report).toMatchObject({ method: 'msp', validationPhotos: 40, acceptedRate: 0.95 });
    // The 38th least doubtful of 40 is the threshold: 1 - (0.99 - 37 * 0.01).
    expect(detector!.threshold!).toBeCloseTo(0.38, 5);
    expect(scoreOf('v0')).toBeCloseTo(0.01, 5);
    expect(scoreOf('not a validation text')).toBeNull();
  });

  it('stores no detector, and says why, with fewer than 10 validation texts or no split', () => {
    const few = { ids: ids.slice(0, 9), probs: validation.probs.slice(0, 27) };
    const short = calibrateSoftmaxForTraining({ validation: few, labels: 3, inputDim: 4 });
    expect(short.detector).toBeNull();
    expect(short.report).toMatchObject({ method: null, reason: expect.stringMatching(/9 validation texts/) });
    expect(
      calibrateSoftmaxForTraining({ validation: undefined, labels: 3, inputDim: 4 }).detector,
    ).toBeNull();
  });
});

describe('softmaxScores', () => {
  it('takes each row of n x labels probabilities on its own', () => {
    expect(Array.from(softmaxScores(Float32Array.from([0.2, 0.8, 0.5, 0.5]), 2))).toEqual([
      expect.closeTo(0.2, 6),
      0.5,
    ]);
  });
});
