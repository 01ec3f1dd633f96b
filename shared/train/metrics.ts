import { InvalidTrainingInputError } from './train-errors.js';

export interface LabelMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true examples of this label. */
  support: number;
}

export interface Metrics {
  n: number;
  accuracy: number;
  /** Unweighted mean of per-label F1 over all labels. */
  macroF1: number;
  /** Mean negative log-likelihood of the true label (natural log), probabilities clamped at 1e-7. */
  logLoss: number;
  /** Expected calibration error of the top-1 confidence over equal-width bins. */
  ece: number;
  perLabel: LabelMetrics[];
  /** confusion[t][p]: examples of true label t predicted as p. */
  confusion: number[][];
}

export const ECE_BINS = 15;

/** Index of the largest value in row `i`; the lowest index wins ties so results do not depend on float noise. */
export function argmaxRow(probs: ArrayLike<number>, i: number, k: number): number {
  let best = 0;
  let bestValue = probs[i * k]!;
  for (let c = 1; c < k; c++) {
    const v = probs[i * k + c]!;
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/**
 * Scores predicted probabilities (n * k, row-major) against true labels. Precision of a label never predicted,
 * and F1 when precision and recall are both 0, count as 0 (scikit-learn's zero_division=0).
 */
export function computeMetrics(
  yTrue: ArrayLike<number>,
  probs: ArrayLike<number>,
  labelNames: readonly string[],
): Metrics {
  const k = labelNames.length;
  const n = yTrue.length;
  if (probs.length !== n * k) {
    throw new InvalidTrainingInputError(`expected ${n} x ${k} probabilities, got ${probs.length} values`);
  }
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const binCount = new Array<number>(ECE_BINS).fill(0);
  const binConfidence = new Array<number>(ECE_BINS).fill(0);
  const binCorrect = new Array<number>(ECE_BINS).fill(0);
  let correct = 0;
  let logLoss = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= k) {
      throw new InvalidTrainingInputError(`label ${t} at ${i} is not in 0..${k - 1}`);
    }
    const p = argmaxRow(probs, i, k);
    const confidence = probs[i * k + p]!;
    confusion[t]![p]!++;
    const hit = p === t ? 1 : 0;
    correct += hit;
    logLoss -= Math.log(Math.min(1, Math.max(1e-7, probs[i * k + t]!)));
    // Bins are (lo, hi]; a confidence of exactly 0 joins the first bin.
    const bin = Math.min(ECE_BINS - 1, Math.max(0, Math.ceil(confidence * ECE_BINS) - 1));
    binCount[bin]!++;
    binConfidence[bin]! += confidence;
    binCorrect[bin]! += hit;
  }
  const perLabel: LabelMetrics[] = labelNames.map((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { label, precision, recall, f1, support };
  });
  let ece = 0;
  for (let b = 0; b < ECE_BINS; b++) {
    if (binCount[b]! > 0) ece += Math.abs(binCorrect[b]! - binConfidence[b]!) / n;
  }
  return {
    n,
    accuracy: n === 0 ? 0 : correct / n,
    macroF1: k === 0 ? 0 : perLabel.reduce((a, m) => a + m.f1, 0) / k,
    logLoss: n === 0 ? 0 : logLoss / n,
    ece,
    perLabel,
    confusion,
  };
}
