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
  fprAt95Tpr,
  MIN_CALIBRATION_PHOTOS,
} from './outlier-calibration.js';
export {
  createOutlierDetector,
  DEFAULT_OUTLIER_COMPONENTS,
  DEFAULT_OUTLIER_METHOD,
  type DetectorMethod,
  type FitOutlierInput,
  type FittedOutlierDetector,
  fitOutlierDetector,
  OUTLIER_METHODS,
  type OutlierDetector,
  type OutlierMethod,
  type OutlierParams,
  poolRows,
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
