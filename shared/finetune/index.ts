export { type DualExtractor, loadDualExtractor } from './dual-extractor.js';
export {
  chooseTrainingMode,
  classifierFromHead,
  type EpochRecord,
  type FineTuneInput,
  type FineTuneOptions,
  type FineTuneResult,
  fineTune,
  fineTuneMargin,
  type ModeScore,
  type TrainingMode,
  type WarmStart,
} from './fine-tune.js';
export {
  FineTuneError,
  InvalidFineTuneInputError,
  InvalidTopError,
  UnsupportedTopError,
} from './finetune-errors.js';
export {
  parseSegment,
  readSegment,
  SEGMENT_JSON,
  SEGMENT_WEIGHTS,
  saveTrunk,
  serializeSegment,
} from './segment-package.js';
export {
  buildDefaultFineTuning,
  buildDefaultSegment,
  buildDefaultTrunk,
  DEFAULT_FEATURE_CUT,
  DEFAULT_TRUNK_CUT,
  decodeSpatialFeatures,
  encodeSpatialFeatures,
  SPATIAL_FEATURE_DTYPE,
  spatialFeatureKey,
  TRUNK_MIN_COSINE_MEAN,
  type TrunkOptions,
  trunkBackboneId,
  trunkIdFor,
} from './spatial-trunk.js';
export {
  type FineTunedTop,
  loadTop,
  parseTop,
  type SerializeTopOptions,
  serializeTop,
  type TopDescriptor,
  type TopPackage,
  topDescriptorSchema,
  topFiles,
} from './top-package.js';
export { foldTopSegment, type TopCuts, type TopSegment } from './top-segment.js';
export { type Activation, depthwiseConv, explicitPad, pointwiseConv } from './trainable-ops.js';
export {
  type ClassifierParams,
  createTrainableTop,
  type Standardization,
  type TopSnapshot,
  type TrainableTop,
  type TrainableTopInit,
} from './trainable-top.js';
