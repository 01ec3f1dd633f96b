export {
  buildBuiltInTextBackbone,
  builtInTextBackboneId,
  type TextBackboneSource,
  WINK_TEXT_SOURCE,
} from './built-in-text-backbone.js';
export { parseCsv } from './csv.js';
export { fnv1a } from './feature-hash.js';
export {
  createSentenceFeaturizer,
  densify,
  type SentenceFeatureSpec,
  type SentenceFeaturizer,
  type SparseFeature,
  stackFeatures,
} from './sentence-features.js';
export {
  buildTextBackbone,
  DEFAULT_TEXT_SPEC,
  DEFAULT_TEXT_VOCABULARY,
  loadTextBackbone,
  TEXT_FIDELITY_THRESHOLD,
  TEXT_FORMAT,
  type TextBackbone,
  type TextBackboneManifest,
  type TextBackbonePackage,
  textBackboneId,
  textBackboneManifestSchema,
} from './text-backbone.js';
export {
  hasTextBackbone,
  parseTextBackboneFiles,
  readDefaultTextBackboneId,
  readTextBackbone,
  readTextBackboneManifest,
  saveTextBackbone,
  setDefaultTextBackbone,
  TEXT_BACKBONE_JSON,
  TEXT_BACKBONE_WEIGHTS,
  textBackboneFiles,
} from './text-backbone-store.js';
export {
  InvalidTextBackboneError,
  TextBackboneNotFoundError,
  TextError,
  TextVectorSourceError,
} from './text-errors.js';
export { normalizeText, type Token, tokenize } from './text-tokenize.js';
export { WINK_PACKAGE, WINK_SOURCE_ID, WINK_VERSION, winkVectors, winkVectorsPath } from './wink-package.js';
export {
  buildWordTable,
  createWordTable,
  quantizeRows,
  type TableFidelity,
  type WordTable,
} from './word-table.js';
export { readWinkVectors, type SourceWord } from './word-vector-source.js';
