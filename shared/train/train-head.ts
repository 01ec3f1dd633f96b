import { z } from 'zod';
import { DEFAULT_FOLDS, needsCrossValidation, stratifiedFolds } from './cross-validation.js';
import { type FitData, type FitOutcome, fitMlp, fitSoftmax, predictStandardized } from './fit.js';
import { type HeadParams, type HeadType, type SerializedHead, serializeHead } from './head-model.js';
import { computeMetrics, type Metrics } from './metrics.js';
import {
  CLASS_WEIGHTINGS,
  type ClassWeighting,
  classWeights,
  labelCounts,
  type Standardization,
  standardize,
} from './numerics.js';
import { fitSparseSoftmax, predictSparse, type SparseFitData, type SparseFitOutcome } from './sparse-fit.js';
import { DEFAULT_VALIDATION_FRACTION, type Split, splitByHash, splitByIds } from './split.js';
import {
  InsufficientExamplesError,
  InvalidTrainingInputError,
  TooFewLabelsError,
  TrainingError,
} from './train-errors.js';

/** Feature rows in compressed sparse row form: row i's columns are indices[indptr[i]..indptr[i + 1]). */
export interface SparseRows {
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export interface TrainInput {
  /** n * dim backbone features, row-major; empty when `sparse` holds the rows. */
  features: Float32Array;
  /**
   * The rows as sparse vectors instead (hashed text n-grams: 16k columns, a few hundred non-zero each). They
   * train the softmax head only, by AdaGrad on the sparse rows (`fitSparseSoftmax`), unstandardized: the text
   * features are already l2-normalized per block, and centring them would make every row dense.
   */
  sparse?: SparseRows;
  dim: number;
  /** Index into labelNames per example. */
  labels: Int32Array | readonly number[];
  labelNames: readonly string[];
  /**
   * Content hash (sha256 hex) per example; drives the validation split, the cross-validation folds and the dataset
   * snapshot. An id `<photo>.<view>` whose `<photo>` is also an id is an augmented view of that photo: folds keep
   * it with its photo and never validate on it.
   */
  ids: readonly string[];
}

export interface TrainOptions {
  /** Refuse to train when any label has fewer examples. Default 5. */
  minPerLabel?: number;
  /** Share of each label held out for model selection. Default 0.2. */
  validationFraction?: number;
  /** Use exactly these examples (by id) for validation instead of the hash split. */
  validationIds?: readonly string[];
  /** Head types to search. Default both, the MLP only while the data is small enough (`mlpMaxCells`). */
  headTypes?: readonly HeadType[];
  /**
   * When head types are not given, the MLP joins the search only if examples x features is at most this.
   * Default 4,000,000 (e.g. 7,000 photos of 576 features). Past it the MLP costs most of the training time
   * (measured: ~30 s of 39 s at 10,000 x 1,280) and, selected on validation with its margin, it has not won.
   */
  mlpMaxCells?: number;
  /** L2 strengths (on the mean loss) to search for the softmax head. */
  softmaxL2?: readonly number[];
  /** L2 strengths to search for the MLP head. */
  mlpL2?: readonly number[];
  /**
   * L2 strengths to search for the softmax head on sparse rows; above `sparseSearchMaxCells` non-zeros only the
   * first is fitted, on the validation split, never by cross-validation (on banking77 with all its data the
   * weakest L2 won by 1-3 points, and each candidate or fold costs as much as the rest of the training). 500,000
   * non-zeros are about 2,200 texts.
   */
  sparseL2?: readonly number[];
  sparseSearchMaxCells?: number;
  /**
   * AdaGrad's base step sizes on sparse rows, searched with `sparseL2` (every pair; above `sparseSearchMaxCells`
   * only the first of each). On banking77 at 10 per intent the cross-validated search chose 0.5 on all three
   * seeds (test accuracy 0.763 against 0.747 with 1.5 alone); the larger step gets there in fewer epochs, which
   * is what a large input, fitted once on its split, needs.
   */
  sparseLearningRates?: readonly number[];
  /** Epoch cap of AdaGrad on sparse rows. */
  sparseMaxEpochs?: number;
  /**
   * Examples AdaGrad may step through on sparse rows before the epoch cap: 3 epochs of banking77's 8,000 training
   * texts. There its validation loss still fell a little up to the 12th epoch while test accuracy stayed within
   * 0.2 points from the 3rd on (0.9175 at 3 epochs, 0.9166 at 4, 0.9162 at 2), at four times the cost; 770 texts
   * still get their 12 epochs.
   */
  sparseMaxSteps?: number;
  /** Epochs the sparse refit continues the split's head for, over train + validation (see refitSparse). */
  sparseRefitEpochs?: number;
  /** 'balanced' weighs each example by n / (labels * n_label). Default 'balanced'. */
  classWeight?: ClassWeighting;
  hiddenUnits?: number;
  dropout?: number;
  learningRate?: number;
  batchSize?: number;
  /** Epoch cap for the MLP. */
  maxEpochs?: number;
  /** Iteration cap for the softmax head's L-BFGS. */
  maxIterations?: number;
  /** Epochs (MLP) without validation improvement before stopping; the softmax head gets 4x as many iterations. */
  patience?: number;
  /**
   * 'loss' picks the candidate with the lowest validation loss, 'accuracy' the most accurate (loss breaks ties).
   * Default: 'accuracy' when cross-validated, else 'loss'. Cross-validated accuracy counts every example once
   * (not a split's 20 per label), and there the loss, with each fit stopped early on what scores it, kept
   * preferring the weakest L2 that fresh data ranked below a stronger one (see scoreCandidate); on one small
   * split accuracy is too coarse to rank neighbours, so the split keeps the loss.
   */
  selectBy?: 'loss' | 'accuracy';
  /**
   * Validation-loss handicap of the MLP: its loss counts `1 + mlpMargin` times when compared. Default 0.1. On
   * clothing-small the MLP beat the softmax head's validation loss by 5-8% on every cut tried yet scored about 2
   * points lower on test (3 seeds, 4 cuts): early stopping on the same validation set flatters the more
   * flexible head, so it has to win clearly.
   */
  mlpMargin?: number;
  /**
   * How candidates are scored. 'auto' (default): by `folds`-fold cross-validation of train + validation when the
   * validation split has fewer than 50 examples of some label (CROSS_VALIDATION_BELOW_PER_LABEL), else on the
   * split, as long as train + validation hold at most `crossValidationMaxCells` feature values. 'always' and
   * 'never' force one way.
   */
  crossValidate?: 'auto' | 'always' | 'never';
  /**
   * The size (rows x feature width) above which 'auto' keeps the single split. Default 8,000,000: about 1,200
   * photos with their mirrored views on the default backbone's 3,264 features. Cross-validation multiplies the
   * search's cost by `folds`; it is cheap and it matters on small data, and above this size the split holds
   * enough photos to rank the candidates (bench/accuracy-bench.ts measures both).
   */
  crossValidationMaxCells?: number;
  /** Folds of the cross-validated search. Default 5. */
  folds?: number;
  /** Retrain the chosen configuration on train + validation. Default true. */
  refit?: boolean;
  seed?: number;
  /**
   * Called after each candidate of the search, e.g. to report progress; a returned promise is awaited before the
   * next candidate, which also lets the event loop run between candidates.
   */
  onCandidate?: (
    candidate: SearchCandidate,
    progress: { done: number; total: number },
  ) => void | Promise<void>;
}

export interface SearchCandidate {
  headType: HeadType;
  l2: number;
  /** AdaGrad's step size, for sparse rows. */
  learningRate?: number;
  /** Iterations (softmax, L-BFGS) or epochs (mlp) at the best validation loss (the folds' median when cross-validated). */
  epochs: number;
  /** On the validation split, or the mean over the folds when cross-validated. */
  validationLoss: number;
  validationAccuracy: number;
  seconds: number;
}

export interface TrainConfig {
  headType: HeadType;
  l2: number;
  /** AdaGrad's step size, for sparse rows. */
  learningRate?: number;
  /** L-BFGS iterations (softmax) or epochs (mlp) at the best validation loss; the refit runs this many. */
  epochs: number;
  classWeight: ClassWeighting;
  selectBy: 'loss' | 'accuracy';
  mlpMargin: number;
  hiddenUnits?: number;
  dropout?: number;
  /** How the candidates were scored (see TrainOptions.crossValidate). */
  selection: 'validation-split' | 'cross-validation';
  /** Folds, when cross-validated. */
  folds?: number;
  /** Whether the stored head was retrained on train + validation. */
  refit: boolean;
  /** L2 used for the refit: `l2 * nTrain / (nTrain + nValidation)` (nTrain: the folds' mean training size when cross-validated), which keeps the penalty's weight relative to the summed loss (scikit-learn's fixed C). */
  refitL2: number;
  nTrain: number;
  nValidation: number;
  seed: number;
}

export interface TrainResult {
  head: SerializedHead;
  /** The chosen configuration fitted on train and scored on the validation split, before any refit. */
  metrics: Metrics;
  /** Its class-weighted validation cross-entropy on that split (what fine-tuning's is compared with). */
  validationLoss: number;
  /** What `metrics` scored: the validation rows' ids and their class probabilities (ids x labels, row-major). */
  validationPredictions: ValidationPredictions;
  config: TrainConfig;
  search: SearchCandidate[];
  /** sha256 hex of the sorted `id,label` lines, joined by newlines. */
  datasetSnapshot: string;
}

/** Per-photo predictions on a validation split, in the order a result's metrics counted them. */
export interface ValidationPredictions {
  ids: readonly string[];
  /** ids.length x labels, row-major. */
  probs: Float32Array;
}

export const DEFAULT_MIN_PER_LABEL = 5;

/** Non-zeros of sparse rows above which the search fits one L2 on the split (TrainOptions.sparseSearchMaxCells). */
export const SPARSE_SEARCH_MAX_CELLS = 500_000;

type RowData = FitData | SparseFitData;

function isSparse(d: RowData): d is SparseFitData {
  return 'indptr' in d;
}

const optionsSchema = z.object({
  minPerLabel: z.number().int().min(2).default(DEFAULT_MIN_PER_LABEL),
  validationFraction: z.number().gt(0).lt(1).default(DEFAULT_VALIDATION_FRACTION),
  validationIds: z.array(z.string()).optional(),
  headTypes: z
    .array(z.enum(['softmax', 'mlp']))
    .min(1)
    .optional(),
  mlpMaxCells: z.number().positive().default(4_000_000),
  softmaxL2: z.array(z.number().nonnegative()).min(1).default([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
  mlpL2: z.array(z.number().nonnegative()).min(1).default([1e-3, 1e-2]),
  sparseL2: z.array(z.number().nonnegative()).min(1).default([1e-6, 1e-5]),
  sparseSearchMaxCells: z.number().positive().default(SPARSE_SEARCH_MAX_CELLS),
  sparseLearningRates: z.array(z.number().positive()).min(1).default([1.5, 0.5]),
  sparseMaxEpochs: z.number().int().positive().default(12),
  sparseMaxSteps: z.number().int().positive().default(24_000),
  sparseRefitEpochs: z.number().int().positive().default(1),
  classWeight: z.enum(CLASS_WEIGHTINGS).default('balanced'),
  hiddenUnits: z.number().int().positive().default(256),
  dropout: z.number().min(0).lt(1).default(0.5),
  learningRate: z.number().positive().default(1e-3),
  batchSize: z.number().int().positive().default(256),
  maxEpochs: z.number().int().positive().default(200),
  maxIterations: z.number().int().positive().default(500),
  patience: z.number().int().positive().default(10),
  selectBy: z.enum(['loss', 'accuracy']).optional(),
  mlpMargin: z.number().min(0).default(0.1),
  crossValidate: z.enum(['auto', 'always', 'never']).default('auto'),
  crossValidationMaxCells: z.number().positive().default(8_000_000),
  folds: z.number().int().min(2).default(DEFAULT_FOLDS),
  refit: z.boolean().default(true),
  seed: z.number().int().default(42),
  onCandidate: z.function().optional(),
});

type ParsedOptions = z.infer<typeof optionsSchema>;

/**
 * Trains a classification head on precomputed backbone features: standardizes them, searches head type and L2
 * strength (early stopping on validation loss) on a validation split, or by cross-validation of train +
 * validation when that split is small (see CROSS_VALIDATION_BELOW_PER_LABEL), scores the winner on the split,
 * then retrains it on everything. The exported head has the standardization folded into its first layer, so it
 * takes raw backbone features.
 */
export async function trainHead(input: TrainInput, options: TrainOptions = {}): Promise<TrainResult> {
  const opts = parseOptions(options);
  const { n, k, y } = validateInput(input);
  if (k < 2) throw new TooFewLabelsError(k);
  const counts = labelCounts(y, k);
  const short = input.labelNames
    .map((label, c) => ({ label, count: counts[c]!, needed: opts.minPerLabel - counts[c]! }))
    .filter((s) => s.needed > 0);
  if (short.length > 0) throw new InsufficientExamplesError(short, opts.minPerLabel);

  const { train, validation } = chooseSplit(input, y, opts);
  if (validation.length === 0) throw new InvalidTrainingInputError('the validation split is empty');
  const trainCounts = labelCounts(y, k, train);
  const untrained = input.labelNames.filter((_, c) => trainCounts[c] === 0);
  if (untrained.length > 0) {
    throw new InvalidTrainingInputError(
      `no training examples left for ${untrained.join(', ')} after the split`,
    );
  }

  const standardization = standardizeRows(input, train);
  const weights = classWeights(trainCounts, opts.classWeight);
  const trainData = gather(input, y, train, standardization, weights);
  const validationData = gather(input, y, validation, standardization, weights);
  const crossValidated =
    opts.crossValidate === 'always' ||
    (opts.crossValidate === 'auto' &&
      cellsOf(input, [...train, ...validation]) <=
        (input.sparse ? opts.sparseSearchMaxCells : opts.crossValidationMaxCells) &&
      needsCrossValidation(labelCounts(y, k, validation)));
  const folds = crossValidated
    ? foldData(input, y, [...train, ...validation], opts)
    : [{ train: trainData, validation: validationData }];
  const selectBy = opts.selectBy ?? (crossValidated ? 'accuracy' : 'loss');

  const search: SearchCandidate[] = [];
  let chosen: { candidate: SearchCandidate; outcome: FitOutcome } | undefined;
  const headTypes: readonly HeadType[] =
    opts.headTypes ??
    (!input.sparse && train.length * input.dim <= opts.mlpMaxCells ? ['softmax', 'mlp'] : ['softmax']);
  if (input.sparse && headTypes.includes('mlp')) {
    throw new InvalidTrainingInputError('sparse feature rows train the softmax head only');
  }
  const grid = candidateGrid(input, headTypes, cellsOf(input, train), opts);
  const total = grid.length;
  for (const { headType, l2, learningRate } of grid) {
    const started = performance.now();
    const scored = scoreCandidate(headType, l2, folds, input.labelNames, withRate(opts, learningRate));
    const candidate: SearchCandidate = {
      headType,
      l2,
      ...(learningRate === undefined ? {} : { learningRate }),
      ...scored.score,
      seconds: (performance.now() - started) / 1000,
    };
    search.push(candidate);
    await opts.onCandidate?.(candidate, { done: search.length, total });
    if (!chosen || better(candidate, chosen.candidate, { ...opts, selectBy })) {
      chosen = { candidate, outcome: scored.last };
    }
  }
  if (!chosen) throw new TrainingError('no_candidate', 'the search produced no candidate');
  const { candidate } = chosen;
  const chosenOpts = withRate(opts, candidate.learningRate);
  // Cross-validation chose the configuration; its head on the split is what the mode choice compares.
  const onSplit = crossValidated
    ? fitCandidate(candidate.headType, candidate.l2, trainData, validationData, chosenOpts)
    : chosen.outcome;
  const validationProbs = predictRows(onSplit.params, validationData);
  const metrics = computeMetrics(validationData.y, validationProbs, input.labelNames);

  let finalParams: HeadParams = onSplit.params;
  let finalStandardization = standardization;
  const foldTrain = folds.reduce((s, f) => s + f.train.n, 0) / folds.length;
  const refitL2 = (candidate.l2 * foldTrain) / n;
  if (opts.refit) {
    const all = [...train, ...validation].sort((a, b) => a - b);
    finalStandardization = standardizeRows(input, all);
    const allData = gather(input, y, all, finalStandardization, classWeights(counts, opts.classWeight));
    const epochs = Math.max(1, candidate.epochs);
    finalParams =
      isSparse(allData) && 'state' in onSplit && cellsOf(input, train) > opts.sparseSearchMaxCells
        ? refitSparse(onSplit as SparseFitOutcome, allData, refitL2, chosenOpts)
        : fitCandidate(candidate.headType, refitL2, allData, undefined, {
            ...chosenOpts,
            maxEpochs: epochs,
            maxIterations: epochs,
            sparseMaxEpochs: epochs,
          }).params;
  }

  const head = await serializeHead(finalParams, finalStandardization, input.labelNames);
  return {
    head,
    metrics,
    validationLoss: onSplit.validationLoss,
    validationPredictions: { ids: validation.map((r) => input.ids[r]!), probs: validationProbs },
    config: {
      headType: candidate.headType,
      l2: candidate.l2,
      ...(candidate.learningRate === undefined ? {} : { learningRate: candidate.learningRate }),
      epochs: candidate.epochs,
      classWeight: opts.classWeight,
      selectBy,
      mlpMargin: opts.mlpMargin,
      ...(candidate.headType === 'mlp' ? { hiddenUnits: opts.hiddenUnits, dropout: opts.dropout } : {}),
      selection: crossValidated ? 'cross-validation' : 'validation-split',
      ...(crossValidated ? { folds: folds.length } : {}),
      refit: opts.refit,
      refitL2: opts.refit ? refitL2 : candidate.l2,
      nTrain: train.length,
      nValidation: validation.length,
      seed: opts.seed,
    },
    search,
    datasetSnapshot: await datasetSnapshotOf(input.ids, y, input.labelNames),
  };
}

function parseOptions(options: TrainOptions): ParsedOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidTrainingInputError(
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    );
  }
  return parsed.data;
}

/**
 * The configuration a search chose, fitted on the `fit` rows for its `epochs` without early stopping (as the
 * refit is), and its class probabilities for the `score` rows (score.length x labels, row-major).
 * Standardization and class weights come from the fit rows alone, as in each fold of the search. `l2` replaces
 * the configuration's: the caller scales it to the fit's size.
 */
export function fitConfiguration(
  input: TrainInput,
  spec: {
    config: TrainConfig;
    l2: number;
    fit: readonly number[];
    score: readonly number[];
    options?: TrainOptions;
  },
): Float32Array {
  const opts = parseOptions(spec.options ?? {});
  const { k, y } = validateInput(input);
  const { config } = spec;
  const standardization = standardizeRows(input, spec.fit);
  const weights = classWeights(labelCounts(y, k, spec.fit), config.classWeight);
  const epochs = Math.max(1, config.epochs);
  const fitted = fitCandidate(
    config.headType,
    spec.l2,
    gather(input, y, spec.fit, standardization, weights),
    undefined,
    {
      ...withRate(opts, config.learningRate),
      hiddenUnits: config.hiddenUnits ?? opts.hiddenUnits,
      dropout: config.dropout ?? opts.dropout,
      seed: config.seed,
      maxEpochs: epochs,
      maxIterations: epochs,
      sparseMaxEpochs: epochs,
    },
  );
  return predictRows(fitted.params, gather(input, y, spec.score, standardization, weights));
}

interface FoldData {
  train: RowData;
  validation: RowData;
}

/** Standardization of dense rows from `rows`; sparse rows are used as they are (mean 0, std 1). */
function standardizeRows(input: TrainInput, rows: readonly number[]): Standardization {
  if (!input.sparse) return standardize(input.features, input.dim, rows);
  return { mean: new Float32Array(input.dim), std: new Float32Array(input.dim).fill(1) };
}

/** Stored values of `rows`: rows x width when dense, their non-zeros when sparse (what a fit's work scales with). */
function cellsOf(input: TrainInput, rows: readonly number[]): number {
  if (!input.sparse) return rows.length * input.dim;
  const { indptr } = input.sparse;
  return rows.reduce((s, r) => s + indptr[r + 1]! - indptr[r]!, 0);
}

function predictRows(params: HeadParams, data: RowData): Float32Array {
  return isSparse(data) ? predictSparse(params, data) : predictStandardized(params, data);
}

/** Standardization and class weights from each fold's own training rows, as the single split has them. */
function foldData(input: TrainInput, y: Int32Array, rows: number[], opts: ParsedOptions): FoldData[] {
  const k = input.labelNames.length;
  return stratifiedFolds(input.ids, y, rows, opts.folds).map((fold) => {
    const s = standardizeRows(input, fold.train);
    const w = classWeights(labelCounts(y, k, fold.train), opts.classWeight);
    return { train: gather(input, y, fold.train, s, w), validation: gather(input, y, fold.validation, s, w) };
  });
}

/**
 * A candidate's validation loss and accuracy: on the one split, or over the folds. Over folds the loss is the
 * minimum of the fold-averaged validation curve and `epochs` where it falls: one stopping point for every fold,
 * as the refit will use. Scoring each fold at its own best iterate instead flatters weak L2, whose longer path
 * has more iterates to get lucky on (measured: it picked the weakest L2 on synthetic blobs whose fresh-data loss
 * was lowest two grid steps up). Accuracy is the folds' mean at their best iterates. `last` is the last fit.
 */
function scoreCandidate(
  headType: HeadType,
  l2: number,
  folds: readonly FoldData[],
  labelNames: readonly string[],
  opts: ParsedOptions,
): { score: Pick<SearchCandidate, 'epochs' | 'validationLoss' | 'validationAccuracy'>; last: FitOutcome } {
  let accuracy = 0;
  const fits = folds.map((fold) => {
    const fit = fitCandidate(headType, l2, fold.train, fold.validation, opts);
    const probs = predictRows(fit.params, fold.validation);
    accuracy += computeMetrics(fold.validation.y, probs, labelNames).accuracy / folds.length;
    return fit;
  });
  const last = fits[fits.length - 1]!;
  if (fits.length === 1) {
    return {
      score: { epochs: last.epochs, validationLoss: last.validationLoss, validationAccuracy: accuracy },
      last,
    };
  }
  const length = Math.min(...fits.map((f) => f.curve.length));
  let epochs = 0;
  let validationLoss = fits.reduce((s, f) => s + f.validationLoss, 0) / fits.length;
  for (let i = 0; i < length; i++) {
    const mean = fits.reduce((s, f) => s + f.curve[i]!, 0) / fits.length;
    if (i === 0 || mean < validationLoss) {
      validationLoss = mean;
      epochs = i + 1;
    }
  }
  return { score: { epochs, validationLoss, validationAccuracy: accuracy }, last };
}

interface GridPoint {
  headType: HeadType;
  l2: number;
  learningRate?: number;
}

/** The search's candidates: L2 strengths per head type; for sparse rows, L2 x AdaGrad step size. */
function candidateGrid(
  input: TrainInput,
  headTypes: readonly HeadType[],
  trainCells: number,
  opts: ParsedOptions,
): GridPoint[] {
  if (input.sparse) {
    const small = trainCells <= opts.sparseSearchMaxCells;
    const l2s = small ? opts.sparseL2 : opts.sparseL2.slice(0, 1);
    const rates = small ? opts.sparseLearningRates : opts.sparseLearningRates.slice(0, 1);
    return rates.flatMap((learningRate) =>
      l2s.map((l2) => ({ headType: 'softmax' as const, l2, learningRate })),
    );
  }
  return headTypes.flatMap((headType) =>
    (headType === 'softmax' ? opts.softmaxL2 : opts.mlpL2).map((l2) => ({ headType, l2 })),
  );
}

/** Options whose sparse step size is `learningRate` (first in the list), when one is given. */
function withRate(opts: ParsedOptions, learningRate: number | undefined): ParsedOptions {
  return learningRate === undefined ? opts : { ...opts, sparseLearningRates: [learningRate] };
}

/**
 * The sparse head's refit above `sparseSearchMaxCells`: the split's head, continued for `sparseRefitEpochs` over
 * train + validation with its AdaGrad state, instead of `epochs` more from zeros. The validation rows' n-grams
 * are mostly new to it and keep their large first steps, so one pass learns them: on banking77's 10,003 texts it
 * scored 0.917 against 0.918 from zeros, at a quarter of the refit's cost (which was half the training). Small
 * data refits from zeros: at 10 per intent one pass lost 3 points, and there the refit is cheap.
 */
function refitSparse(
  split: SparseFitOutcome,
  all: SparseFitData,
  l2: number,
  opts: ParsedOptions,
): HeadParams {
  return fitSparseSoftmax(all, undefined, {
    l2,
    learningRate: opts.sparseLearningRates[0]!,
    maxEpochs: opts.sparseRefitEpochs,
    patience: 1,
    seed: opts.seed + 1,
    warmStart: split.state,
  }).params;
}

function fitCandidate(
  headType: HeadType,
  l2: number,
  train: RowData,
  validation: RowData | undefined,
  opts: ParsedOptions,
): FitOutcome {
  if (isSparse(train)) {
    return fitSparseSoftmax(train, validation as SparseFitData | undefined, {
      l2,
      learningRate: opts.sparseLearningRates[0]!,
      maxEpochs: Math.min(opts.sparseMaxEpochs, Math.max(1, Math.round(opts.sparseMaxSteps / train.n))),
      patience: Math.max(2, Math.round(opts.patience / 3)),
      seed: opts.seed,
    });
  }
  if (isSparse(validation ?? train)) throw new InvalidTrainingInputError('mixed sparse and dense rows');
  const dense = validation as FitData | undefined;
  if (headType === 'softmax') {
    return fitSoftmax(train, dense, {
      l2,
      maxIterations: opts.maxIterations,
      // L-BFGS iterations are far cheaper and noisier than epochs, so allow proportionally more of them.
      patience: opts.patience * 4,
      gradientTolerance: 1e-5,
    });
  }
  return fitMlp(train, dense, {
    l2,
    hidden: opts.hiddenUnits,
    dropout: opts.dropout,
    learningRate: opts.learningRate,
    batchSize: opts.batchSize,
    maxEpochs: opts.maxEpochs,
    patience: opts.patience,
    seed: opts.seed,
  });
}

function better(
  a: SearchCandidate,
  b: SearchCandidate,
  opts: Pick<ParsedOptions, 'mlpMargin'> & { selectBy: 'loss' | 'accuracy' },
): boolean {
  if (opts.selectBy === 'accuracy' && a.validationAccuracy !== b.validationAccuracy) {
    return a.validationAccuracy > b.validationAccuracy;
  }
  const handicapped = (c: SearchCandidate) =>
    c.validationLoss * (c.headType === 'mlp' ? 1 + opts.mlpMargin : 1);
  return handicapped(a) < handicapped(b);
}

function validateInput(input: TrainInput): { n: number; k: number; y: Int32Array } {
  const n = input.ids.length;
  const k = input.labelNames.length;
  if (!Number.isInteger(input.dim) || input.dim < 1) throw new InvalidTrainingInputError(`dim ${input.dim}`);
  if (input.labels.length !== n)
    throw new InvalidTrainingInputError(`${n} ids but ${input.labels.length} labels`);
  if (input.sparse) validateSparse(input.sparse, n, input.dim);
  else if (input.features.length !== n * input.dim) {
    throw new InvalidTrainingInputError(`${input.features.length} feature values for ${n} x ${input.dim}`);
  }
  if (new Set(input.labelNames).size !== k) throw new InvalidTrainingInputError('label names repeat');
  const seen = new Map<string, number>();
  input.ids.forEach((id, i) => {
    const first = seen.get(id);
    if (first !== undefined) {
      const label = (row: number) => input.labelNames[Number(input.labels[row])] ?? String(input.labels[row]);
      throw new InvalidTrainingInputError(
        `id ${id} appears twice (examples ${first} and ${i}, labels '${label(first)}' and '${label(i)}'): each example must be a distinct photo; deduplicate the photos first`,
      );
    }
    seen.set(id, i);
  });
  const y = Int32Array.from(input.labels);
  for (let i = 0; i < n; i++) {
    if (y[i]! < 0 || y[i]! >= k || y[i] !== input.labels[i]) {
      throw new InvalidTrainingInputError(`label ${input.labels[i]} at ${i} is not in 0..${k - 1}`);
    }
  }
  for (let i = 0; i < input.features.length; i++) {
    if (!Number.isFinite(input.features[i]!)) {
      throw new InvalidTrainingInputError(
        `feature ${i % input.dim} of example ${Math.floor(i / input.dim)} is not finite`,
      );
    }
  }
  return { n, k, y };
}

function validateSparse(sparse: SparseRows, n: number, dim: number): void {
  const { indptr, indices, values } = sparse;
  if (
    indptr.length !== n + 1 ||
    indptr[0] !== 0 ||
    indptr[n] !== indices.length ||
    values.length !== indices.length
  ) {
    throw new InvalidTrainingInputError(`sparse rows do not describe ${n} rows`);
  }
  for (let i = 0; i < n; i++) {
    if (indptr[i + 1]! < indptr[i]!)
      throw new InvalidTrainingInputError(`sparse row ${i} has a negative length`);
  }
  for (let p = 0; p < indices.length; p++) {
    if (!(indices[p]! >= 0 && indices[p]! < dim)) {
      throw new InvalidTrainingInputError(`sparse column ${indices[p]} is outside 0..${dim - 1}`);
    }
    if (!Number.isFinite(values[p]!)) throw new InvalidTrainingInputError(`sparse value ${p} is not finite`);
  }
}

function chooseSplit(input: TrainInput, y: Int32Array, opts: ParsedOptions): Split {
  if (!opts.validationIds) return splitByHash(input.ids, y, { fraction: opts.validationFraction });
  return splitByIds(input.ids, opts.validationIds);
}

function gather(
  input: TrainInput,
  y: Int32Array,
  rows: readonly number[],
  standardization: Standardization,
  weights: Float32Array,
): RowData {
  if (input.sparse)
    return gatherSparse(input.sparse, { dim: input.dim, k: input.labelNames.length }, y, rows, weights);
  return gatherDense(input, y, rows, standardization, weights);
}

function gatherSparse(
  sparse: SparseRows,
  shape: { dim: number; k: number },
  y: Int32Array,
  rows: readonly number[],
  weights: Float32Array,
): SparseFitData {
  const indptr = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => {
    indptr[i + 1] = indptr[i]! + sparse.indptr[r + 1]! - sparse.indptr[r]!;
  });
  const indices = new Int32Array(indptr[rows.length]!);
  const values = new Float32Array(indptr[rows.length]!);
  rows.forEach((r, i) => {
    const from = sparse.indptr[r]!;
    const to = sparse.indptr[r + 1]!;
    indices.set(sparse.indices.subarray(from, to), indptr[i]!);
    values.set(sparse.values.subarray(from, to), indptr[i]!);
  });
  const ys = Int32Array.from(rows, (r) => y[r]!);
  const w = Float32Array.from(rows, (r) => weights[y[r]!]!);
  return { n: rows.length, ...shape, indptr, indices, values, y: ys, w };
}

function gatherDense(
  input: TrainInput,
  y: Int32Array,
  rows: readonly number[],
  standardization: Standardization,
  weights: Float32Array,
): FitData {
  const { dim } = input;
  const { mean, std } = standardization;
  const x = new Float32Array(rows.length * dim);
  const ys = new Int32Array(rows.length);
  const w = new Float32Array(rows.length);
  rows.forEach((r, i) => {
    const src = r * dim;
    const dst = i * dim;
    for (let j = 0; j < dim; j++) x[dst + j] = (input.features[src + j]! - mean[j]!) / std[j]!;
    ys[i] = y[r]!;
    w[i] = weights[y[r]!]!;
  });
  return { n: rows.length, dim, k: input.labelNames.length, x, y: ys, w };
}

/** sha256 hex of the sorted `id,label` lines: what identifies the examples a head (or top) was trained on. */
export async function datasetSnapshotOf(
  ids: readonly string[],
  y: ArrayLike<number>,
  labelNames: readonly string[],
): Promise<string> {
  const lines = ids.map((id, i) => `${id},${labelNames[y[i]!]}`).sort();
  // Web Crypto keeps this module free of node: imports; it exists in Node 20, Lambda and edge runtimes alike.
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(lines.join('\n')));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
