export {
  CROSS_VALIDATION_BELOW_PER_LABEL,
  DEFAULT_FOLDS,
  needsCrossValidation,
  stratifiedFolds,
} from './cross-validation.js';
export { type Head, type HeadType, loadHead, type SerializedHead } from './head-model.js';
export { findLabelSuspects, type LabelSuspect, type SuspectSearch } from './label-suspects.js';
export { argmaxRow, computeMetrics, ECE_BINS, type LabelMetrics, type Metrics } from './metrics.js';
export {
  CLASS_WEIGHTINGS,
  type ClassWeighting,
  classWeights,
  createEarlyStopping,
  createRng,
  type DenseLayer,
  type EarlyStopping,
  foldStandardization,
  IMPROVEMENT_TOLERANCE,
  isSignificantImprovement,
  labelCounts,
  type Standardization,
  shuffleInPlace,
  standardize,
  unfoldStandardization,
} from './numerics.js';
export {
  DEFAULT_VALIDATION_FRACTION,
  hashFraction,
  type Split,
  type SplitOptions,
  splitByHash,
  splitByIds,
} from './split.js';
export {
  InsufficientExamplesError,
  InvalidHeadError,
  InvalidTrainingInputError,
  type ShortLabel,
  TooFewLabelsError,
  TrainingError,
} from './train-errors.js';
export {
  DEFAULT_MIN_PER_LABEL,
  datasetSnapshotOf,
  fitConfiguration,
  type SearchCandidate,
  type TrainConfig,
  type TrainInput,
  type TrainOptions,
  type TrainResult,
  trainHead,
  type ValidationPredictions,
} from './train-head.js';
