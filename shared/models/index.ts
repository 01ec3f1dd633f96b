export { InvalidVersionError, ModelError, NoModelError, PointerConflictError } from './model-errors.js';
export { type CurrentPointer, currentPointerSchema, layout } from './model-layout.js';
export {
  flipPointer,
  type LoadedVersion,
  listVersions,
  newVersionName,
  type PointerRead,
  pollPointer,
  readPointer,
  readVersion,
  requireCurrentVersion,
  rollback,
  writeVersion,
} from './model-store.js';
export {
  type DecodedVersion,
  type DecodeOptions,
  decodeVersion,
  describeMode,
  type EncodedVersion,
  encodeFineTunedVersion,
  encodeHeadVersion,
  HEAD_BIN,
  HEAD_JSON,
  headFormatSchema,
  type ManifestDraft,
  type ModelManifest,
  modelManifestSchema,
  modeOf,
  TOP_FORMAT,
  TOP_JSON,
  TOP_WEIGHTS,
  VERSION_FILES,
  VERSION_FORMATS,
  type VersionCommon,
  type VersionMode,
} from './version-format.js';
export {
  VERSION_STAGE,
  VERSION_STAGE_TAG,
  type VersionStage,
  versionStageTags,
} from './version-stage.js';
