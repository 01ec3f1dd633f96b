import {
  createOutlierDetector,
  DEFAULT_OUTLIER_METHOD,
  type DetectorMethod,
  type FittedOutlierDetector,
  featurePartOf,
  fitOutlierDetector,
  type OutlierDetector,
  type OutlierMethod,
  poolRows,
  usesDoubt,
} from './outlier-detector.js';
import { OutlierError } from './outlier-errors.js';
import {
  type SketchSpec,
  type SparseRows,
  sketchedDim,
  sketchSparseRows,
  TEXT_OUTLIER,
  textSketch,
} from './outlier-sketch.js';
import { createSoftmaxOutlierDetector, softmaxScores } from './softmax-outlier.js';

/** Rank statistics of outlier scores (higher = more unusual) and the threshold that accepts a share of photos. */

/** Area under the ROC curve of telling `outliers` from `inliers` by score; ties count half. */
export function auroc(inliers: ArrayLike<number>, outliers: ArrayLike<number>): number {
  const all = [
    ...Array.from(inliers, (s) => ({ s, out: false })),
    ...Array.from(outliers, (s) => ({ s, out: true })),
  ].sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    // j starts past i: a NaN equals nothing, itself included, and must not stall the walk.
    let j = i + 1;
    while (j < all.length && all[j]!.s === all[i]!.s) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let t = i; t < j; t++) if (all[t]!.out) rankSum += avgRank;
    i = j;
  }
  const nOut = outliers.length;
  const nIn = inliers.length;
  if (nOut === 0 || nIn === 0) return Number.NaN;
  return (rankSum - (nOut * (nOut + 1)) / 2) / (nOut * nIn);
}

/** The smallest threshold that accepts (score <= threshold) at least `rate` of `scores`. */
export function acceptingThreshold(scores: ArrayLike<number>, rate: number): number {
  const s = Float64Array.from(scores).sort();
  return s[Math.max(0, Math.ceil(rate * s.length) - 1)]!;
}

/** Share of `scores` at or below the threshold. */
export function acceptedRate(scores: ArrayLike<number>, threshold: number): number {
  let ok = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! <= threshold) ok++;
  return scores.length === 0 ? Number.NaN : ok / scores.length;
}

/**
 * False-positive rate at 95% true-positive rate, the in-distribution photos being the positives: the share of
 * outliers accepted by the threshold that accepts 95% of inliers.
 */
export function fprAt95Tpr(inliers: ArrayLike<number>, outliers: ArrayLike<number>): number {
  return acceptedRate(outliers, acceptingThreshold(inliers, 0.95));
}

/** Fewer validation photos than this and no threshold is set: 95% of 9 photos says little. */
export const MIN_CALIBRATION_PHOTOS = 10;
/** The share of in-distribution validation photos the threshold accepts. */
export const ACCEPT_RATE = 0.95;

/**
 * What a training stores when it has the head's validation predictions: on clothing-small's held-out labels
 * (bench:ood) the head's doubt added to the feature distances scored 0.70 against their 0.61, and the distances
 * keep unrelated images far off (0.96).
 */
export const TRAINED_OUTLIER_METHOD: OutlierMethod = 'mahalanobis+residual+doubt';

/**
 * `doubtScale` is this quantile of the validation photos' doubt. At the median the doubt of ordinary photos
 * outweighed the distances of unrelated images (bench:ood: synthetic far-off AUROC 0.76 against 0.98 for the
 * distances alone, held-out labels 0.71); at the 90th percentile held-out labels scored 0.70 and far-off 0.96.
 */
export const DOUBT_SCALE_QUANTILE = 0.9;

/**
 * The least `doubtScale` a calibration sets: a head sure of nearly every validation photo has doubts near 0, and
 * dividing by one would let a trace of doubt outweigh any distance.
 */
export const MIN_DOUBT_SCALE = 0.01;

export interface CalibrationInput {
  /** rows * dim row-major; every row the training saw (training split, augmented views, validation). */
  features: Float32Array;
  dim: number;
  labels: ArrayLike<number>;
  trainRows: readonly number[];
  validationRows: readonly number[];
  method?: OutlierMethod;
  /** Principal components (fitOutlierDetector's default when absent). */
  components?: number;
  pool?: [number, number, number];
  /**
   * The rows are already narrowed by this sketch (a text version's features, see outlier-sketch.ts): the stored
   * detector applies it to the full rows it is given at serving.
   */
  sketch?: SketchSpec;
  /** What the rows are, in the report's reasons; default 'photos'. */
  noun?: 'photos' | 'texts';
  /** Names of the label indices, for the report. */
  labelNames?: readonly string[];
  /** Labels held out, one at a time, for the held-out AUROC; default 2 (each is one more fit). */
  heldOutLabels?: number;
  /**
   * The head's class probabilities of the validation rows (validationRows.length x labels, in their order): the
   * doubt methods need them, to set `doubtScale` and to score the rows the threshold is set on.
   */
  validationProbs?: Float32Array;
}

/** What evaluation.json records of the detector. */
export type CalibrationReport =
  | {
      method: DetectorMethod;
      threshold: number;
      /** Share of validation photos the threshold accepts (scored by a detector fitted without them). */
      acceptedRate: number;
      validationPhotos: number;
      /** Principal components (fitted methods). */
      components?: number;
      /** What the detector reads (absent: the whole feature, as the head sees it). */
      input?: string;
      /**
       * Fitted methods: leave-one-label-out on the training data, the AUROC of telling a label never fitted from
       * the validation photos. `msp` has none: it would take a head trained without each label.
       */
      heldOutAuroc?: {
        mean: number | null;
        perLabel: { label: string; auroc: number }[];
        /** When it differs from `method`: the check fits no head, so a doubt method's feature part is scored. */
        scored?: OutlierMethod;
      };
      seconds: number;
    }
  | { method: null; reason: string };

/** A calibrated detector (null when none could be), its report, and what it scored each validation row. */
export interface Calibration {
  detector: OutlierDetector | null;
  report: CalibrationReport;
  /** Aligned with the validation rows: scores of the detector that is stored. Null without a detector. */
  validationScores: Float32Array | null;
}

/**
 * Fits the detector on the training rows, sets its threshold so ACCEPT_RATE of the validation photos are
 * accepted, and estimates how well it tells an unseen label apart by leaving labels out one at a time.
 */
export function calibrateOutlierDetector(input: CalibrationInput): Calibration {
  const started = performance.now();
  const { validationRows } = input;
  const noun = input.noun ?? 'photos';
  if (validationRows.length < MIN_CALIBRATION_PHOTOS) {
    return {
      detector: null,
      report: {
        method: null,
        reason: `${validationRows.length} validation ${noun} are fewer than the ${MIN_CALIBRATION_PHOTOS} a threshold needs; predictions answer unknown: null`,
      },
      validationScores: null,
    };
  }
  let fitted: FittedOutlierDetector;
  try {
    fitted = withDoubtScale(fitOn(input, input.trainRows), input);
  } catch (err) {
    if (!(err instanceof OutlierError)) throw err;
    return {
      detector: null,
      report: { method: null, reason: `${err.message}; predictions answer unknown: null` },
      validationScores: null,
    };
  }
  const validationScores = fitted.score(
    rowsOf(input, validationRows),
    validationRows.length,
    input.validationProbs,
  );
  if (!validationScores.every(Number.isFinite)) {
    // Degenerate features (too few dimensions or photos for the covariance the method needs) give no usable
    // score: no detector, rather than a threshold nothing can be compared with.
    return {
      detector: null,
      report: {
        method: null,
        reason: `the outlier scores of the validation ${noun} are not finite (${input.dim} features, ${input.trainRows.length} training ${noun}); predictions answer unknown: null`,
      },
      validationScores: null,
    };
  }
  const threshold = acceptingThreshold(validationScores, ACCEPT_RATE);
  const calibrated = fitted.withThreshold(threshold);
  const detector = input.sketch
    ? createOutlierDetector({ ...calibrated.params, sketch: input.sketch })
    : calibrated;
  return {
    detector,
    report: {
      method: calibrated.method,
      threshold,
      acceptedRate: acceptedRate(validationScores, threshold),
      validationPhotos: validationRows.length,
      components: calibrated.params.k,
      ...(input.sketch ? { input: describeSketch(input.sketch) } : {}),
      heldOutAuroc: heldOut(input),
      seconds: (performance.now() - started) / 1000,
    },
    validationScores,
  };
}

const HELD_OUT_ROWS = 500;
/**
 * At most this many training rows fit each held-out check's detector: the check estimates how well an unseen
 * label stands out, which does not need every row, and a fit's cost grows with its rows. With 3,000 the two
 * checks cost twice the stored detector's fit on clothing-small (bench:ood: the calibration took 0.17 times a
 * head search, 0.11 with 800).
 */
const HELD_OUT_FIT_ROWS = 800;

/** At most `max` of `rows`, evenly spaced. */
function evenly(rows: readonly number[], max: number): number[] {
  if (rows.length <= max) return [...rows];
  return Array.from({ length: max }, (_, i) => rows[Math.floor((i * rows.length) / max)]!);
}

function describeSketch(s: SketchSpec): string {
  return s.sketch > 0
    ? `the first ${s.keep} columns and the other ${s.inputDim - s.keep} hashed into ${s.sketch}`
    : `the first ${s.keep} columns`;
}

/** A doubt method's detector with its `doubtScale` from the validation rows' probabilities; others as they are. */
function withDoubtScale(fitted: FittedOutlierDetector, input: CalibrationInput): FittedOutlierDetector {
  if (!usesDoubt(fitted.method)) return fitted;
  const probs = input.validationProbs;
  const n = input.validationRows.length;
  if (!probs || probs.length === 0 || probs.length % n !== 0) {
    throw new OutlierError(
      'outlier_input',
      `a ${fitted.method} detector needs the head's probabilities of the ${n} validation rows`,
    );
  }
  const doubt = softmaxScores(probs, probs.length / n).sort();
  const at = Math.min(doubt.length - 1, Math.floor(DOUBT_SCALE_QUANTILE * doubt.length));
  const doubtScale = Math.max(MIN_DOUBT_SCALE, doubt[at]!);
  return createOutlierDetector({ ...fitted.params, doubtScale });
}

function heldOut(
  input: CalibrationInput,
): NonNullable<Extract<CalibrationReport, { method: DetectorMethod }>['heldOutAuroc']> {
  const method = input.method ?? DEFAULT_OUTLIER_METHOD;
  const scored = featurePartOf(method);
  const present = [...new Set(input.trainRows.map((r) => input.labels[r]!))].sort((a, b) => a - b);
  const want = Math.min(input.heldOutLabels ?? 2, present.length - 2);
  const perLabel: { label: string; auroc: number }[] = [];
  for (let i = 0; i < want; i++) {
    // Spread over the label list so the check does not depend on which labels sort first.
    const label = present[Math.floor((i * present.length) / want)]!;
    const fitRows = evenly(
      input.trainRows.filter((r) => input.labels[r] !== label),
      HELD_OUT_FIT_ROWS,
    );
    // At most HELD_OUT_ROWS in-distribution rows: an AUROC needs no more, and each is scored against every
    // training row by the k-NN methods.
    const inRows = evenly(
      input.validationRows.filter((r) => input.labels[r] !== label),
      HELD_OUT_ROWS,
    );
    const outRows = [...input.trainRows, ...input.validationRows].filter((r) => input.labels[r] === label);
    if (fitRows.length < 3 || inRows.length === 0 || outRows.length === 0) continue;
    const d = fitOn({ ...input, method: scored }, fitRows);
    const a = auroc(
      d.score(rowsOf(input, inRows), inRows.length),
      d.score(rowsOf(input, outRows), outRows.length),
    );
    perLabel.push({ label: input.labelNames?.[label] ?? String(label), auroc: a });
  }
  const mean = perLabel.length ? perLabel.reduce((s, p) => s + p.auroc, 0) / perLabel.length : null;
  return { mean, perLabel, ...(scored === method ? {} : { scored }) };
}

function fitOn(input: CalibrationInput, rows: readonly number[]): FittedOutlierDetector {
  const inDim = input.pool ? input.pool[0] * input.pool[1] * input.pool[2] : input.dim;
  const raw = rowsOf(input, rows);
  const features = input.pool ? poolRows(raw, rows.length, input.pool) : raw;
  return fitOutlierDetector({
    features,
    dim: input.pool ? input.pool[2] : inDim,
    labels: rows.map((r) => input.labels[r]!),
    ...(input.method ? { method: input.method } : {}),
    ...(input.components ? { components: input.components } : {}),
    ...(input.pool ? { pool: input.pool } : {}),
  });
}

function rowsOf(input: CalibrationInput, rows: readonly number[]): Float32Array {
  const dim = input.pool ? input.pool[0] * input.pool[1] * input.pool[2] : input.dim;
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    out.set(input.features.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
}

/**
 * A training's calibration, from what the trainer holds: rows whose id is a validation id calibrate, the rest
 * (photos and augmented views of the training split) fit. No validation split: no detector, and why.
 */
export function calibrateForTraining(input: {
  features: Float32Array;
  dim: number;
  labels: ArrayLike<number>;
  labelNames: readonly string[];
  ids: readonly string[];
  validationIds: readonly string[] | undefined;
  method?: OutlierMethod;
  components?: number;
  sketch?: SketchSpec;
  noun?: 'photos' | 'texts';
  /**
   * The version's classifier's probabilities of the validation photos (ids and ids x labels): with them (for
   * every validation row) the method defaults to TRAINED_OUTLIER_METHOD, without them to the features alone.
   */
  validationPredictions?: { ids: readonly string[]; probs: Float32Array };
}): Calibration & { scoreOf: (id: string) => number | null } {
  if (!input.validationIds) {
    return {
      detector: null,
      report: {
        method: null,
        reason: `too few ${input.noun ?? 'photos'} per label for a validation split to calibrate on; predictions answer unknown: null`,
      },
      validationScores: null,
      scoreOf: () => null,
    };
  }
  const validation = new Set(input.validationIds);
  const trainRows: number[] = [];
  const validationRows: number[] = [];
  input.ids.forEach((id, i) => {
    (validation.has(id) ? validationRows : trainRows).push(i);
  });
  const validationProbs = probsOfRows(input, validationRows);
  const method = input.method ?? (validationProbs ? TRAINED_OUTLIER_METHOD : DEFAULT_OUTLIER_METHOD);
  const calibration = calibrateOutlierDetector({
    ...input,
    method,
    trainRows,
    validationRows,
    ...(validationProbs ? { validationProbs } : {}),
  });
  const scores = new Map<string, number>();
  const s = calibration.validationScores;
  if (s) {
    validationRows.forEach((r, i) => {
      scores.set(input.ids[r]!, s[i]!);
    });
  }
  return { ...calibration, scoreOf: (id) => scores.get(id) ?? null };
}

/** The predictions of `rows` (by id) in their order, or undefined when any row has none. */
function probsOfRows(
  input: {
    ids: readonly string[];
    labelNames: readonly string[];
    validationPredictions?: { ids: readonly string[]; probs: Float32Array };
  },
  rows: readonly number[],
): Float32Array | undefined {
  const p = input.validationPredictions;
  if (!p) return undefined;
  const k = input.labelNames.length;
  const at = new Map(p.ids.map((id, i) => [id, i]));
  if (p.probs.length !== p.ids.length * k || rows.some((r) => !at.has(input.ids[r]!))) return undefined;
  const out = new Float32Array(rows.length * k);
  rows.forEach((r, i) => {
    const j = at.get(input.ids[r]!)!;
    out.set(p.probs.subarray(j * k, (j + 1) * k), i * k);
  });
  return out;
}

/**
 * A text version's calibration, from the sparse sentence features the head trained on: each row narrowed by the
 * text sketch (its pooled word vectors kept, its n-grams hashed; `textSketch`), the detector fitted and
 * calibrated on those, and the sketch stored with it so serving narrows the head's dense rows the same way.
 */
export function calibrateTextForTraining(input: {
  sparse: SparseRows;
  feature: { inputDim: number; denseDim: number };
  labels: ArrayLike<number>;
  labelNames: readonly string[];
  ids: readonly string[];
  validationIds: readonly string[] | undefined;
}): ReturnType<typeof calibrateForTraining> {
  const sketch = textSketch(input.feature);
  return calibrateForTraining({
    features: sketchSparseRows(input.sparse, sketch),
    dim: sketchedDim(sketch),
    labels: input.labels,
    labelNames: input.labelNames,
    ids: input.ids,
    validationIds: input.validationIds,
    method: TEXT_OUTLIER.method,
    components: TEXT_OUTLIER.components,
    sketch,
    noun: 'texts',
  });
}

/**
 * A text version's calibration: the head's own doubt (`msp`, shared/outlier/softmax-outlier.ts), its threshold
 * set on the validation texts' probabilities as the chosen configuration gave them before the refit (so a text
 * the head never saw sets it), accepting ACCEPT_RATE of them.
 */
export function calibrateSoftmaxForTraining(input: {
  /** The split head's validation predictions: ids and ids x labels probabilities. */
  validation: { ids: readonly string[]; probs: Float32Array } | undefined;
  labels: number;
  /** Width of the feature rows the head takes. */
  inputDim: number;
}): Calibration & { scoreOf: (id: string) => number | null } {
  const started = performance.now();
  const n = input.validation?.ids.length ?? 0;
  if (!input.validation || n < MIN_CALIBRATION_PHOTOS) {
    return {
      detector: null,
      report: {
        method: null,
        reason: `${n} validation texts are fewer than the ${MIN_CALIBRATION_PHOTOS} a threshold needs; predictions answer unknown: null`,
      },
      validationScores: null,
      scoreOf: () => null,
    };
  }
  const validationScores = softmaxScores(input.validation.probs, input.labels);
  const threshold = acceptingThreshold(validationScores, ACCEPT_RATE);
  const detector = createSoftmaxOutlierDetector({
    method: 'msp',
    dim: input.inputDim,
    labels: input.labels,
    threshold,
  });
  const scores = new Map(input.validation.ids.map((id, i) => [id, validationScores[i]!]));
  return {
    detector,
    report: {
      method: 'msp',
      threshold,
      acceptedRate: acceptedRate(validationScores, threshold),
      validationPhotos: n,
      input: "the head's class probabilities: 1 minus the top one",
      seconds: (performance.now() - started) / 1000,
    },
    validationScores,
    scoreOf: (id) => scores.get(id) ?? null,
  };
}
