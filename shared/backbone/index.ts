export {
  BackboneError,
  BackboneInputError,
  BackboneIntegrityError,
  FidelityError,
  InvalidBackboneError,
  UnsupportedGraphOpError,
} from './backbone-errors.js';
export {
  type BackboneManifest,
  backboneIdSchema,
  backboneManifestSchema,
  type Quantization,
} from './backbone-manifest.js';
export {
  BACKBONE_JSON,
  BACKBONE_WEIGHTS,
  type BackbonePackage,
  parseBackbone,
  serializeBackbone,
  sha256Hex,
} from './backbone-package.js';
export {
  BackboneNotFoundError,
  listBackbones,
  readBackbone,
  readBackboneManifest,
  readDefaultBackboneId,
  saveBackbone,
  setDefaultBackbone,
} from './backbone-store.js';
export { calibrationPhotosDir } from './calibration.js';
export {
  buildDefaultBackbone,
  DEFAULT_INPUT_SIZE,
  DOWNSCALE_HINT,
  defaultBackboneId,
} from './default-backbone.js';
export {
  type BuiltInBackboneOptions,
  compareBackbones,
  cosine,
  type ExportOptions,
  type ExportResult,
  exportBackbone,
} from './export-backbone.js';
export { type FoldedGraph, foldGraphModel, type GraphModelSource } from './graph-model-fold.js';
export { gridAvgPool2, gridCellBounds, type Pooling, pooledDim } from './grid-pool.js';
export type { HeadstartGraph } from './headstart-graph.js';
export {
  type Backbone,
  backboneFromLayersModel,
  type LoadBackboneOptions,
  loadBackbone,
} from './load-backbone.js';
export {
  buildMidBackbone,
  MID_CUT,
  MID_INPUT_SIZE,
  MID_POOLING,
  MID_QUANTIZATION,
  type MidBackboneOptions,
  midBackboneId,
} from './mid-backbone.js';
export {
  buildMnv2Backbone,
  MNV2_CUT,
  MNV2_INPUT_SIZE,
  MNV2_QUANTIZATION,
  mnv2BackboneId,
} from './mnv2-backbone.js';
