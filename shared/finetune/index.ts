export {
  buildDefaultFineTuning,
  buildDefaultSegment,
  buildDefaultTrunk,
  buildFineTuningFor,
  builtInInputSize,
  trunkBackboneId,
  trunkIdFor,
} from './built-in-trunks.js';
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
export { buildMidFineTuning, buildMidSegment, MID_TRUNK_CUT, midTrunkId } from './mid-trunk.js';
export {
  parseSegment,
  readSegment,
  SEGMENT_JSON,
  SEGMENT_WEIGHTS,
  saveTrunk,
  serializeSegment,
} from './segment-package.js';
export {
  buildMnv2FineTuning,
  buildMnv2Trunk,
  decodeSpatialFeatures,
  encodeSpatialFeatures,
  type FineTuningBuild,
  MNV2_FEATURE_CUT,
  MNV2_TRUNK_CUT,
  mnv2TrunkId,
  SPATIAL_FEATURE_DTYPE,
  spatialFeatureKey,
  TRUNK_MIN_COSINE_MEAN,
  type TrunkOptions,
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
export {
  foldGraphTopSegment,
  foldTopSegment,
  type TopCuts,
  type TopPooling,
  type TopSegment,
} from './top-segment.js';
export { type Activation, depthwiseConv, explicitPad, pointwiseConv } from './trainable-ops.js';
export {
  type ClassifierParams,
  createTrainableTop,
  type Standardization,
  type TopSnapshot,
  type TrainableTop,
  type TrainableTopInit,
} from './trainable-top.js';
