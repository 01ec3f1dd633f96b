export {
  ACCEPT_RATE,
  acceptedRate,
  acceptingThreshold,
  auroc,
  type Calibration,
  type CalibrationInput,
  type CalibrationReport,
  calibrateForTraining,
  calibrateOutlierDetector,
  calibrateSoftmaxForTraining,
  calibrateTextForTraining,
  DOUBT_SCALE_QUANTILE,
  fprAt95Tpr,
  MIN_CALIBRATION_PHOTOS,
  MIN_DOUBT_SCALE,
  TRAINED_OUTLIER_METHOD,
} from './outlier-calibration.js';
export {
  createOutlierDetector,
  DEFAULT_OUTLIER_COMPONENTS,
  DEFAULT_OUTLIER_METHOD,
  type DetectorMethod,
  type FitOutlierInput,
  type FittedOutlierDetector,
  featurePartOf,
  fitOutlierDetector,
  OUTLIER_METHODS,
  type OutlierDetector,
  type OutlierMethod,
  type OutlierParams,
  poolRows,
  usesDoubt,
} from './outlier-detector.js';
export { OutlierError } from './outlier-errors.js';
export { decodeOutlierDetector, encodeOutlierDetector } from './outlier-package.js';
export {
  type SketchSpec,
  type SparseRows,
  sketchDenseRows,
  sketchedDim,
  sketchSparseRows,
  TEXT_OUTLIER,
  textSketch,
} from './outlier-sketch.js';
export {
  createSoftmaxOutlierDetector,
  type SoftmaxOutlierParams,
  softmaxScores,
} from './softmax-outlier.js';
