export { InvalidVersionError, ModelError, NoModelError, PointerConflictError } from './model-errors.js';
export {
  type CurrentPointer,
  currentPointerSchema,
  layout,
  type ModelManifest,
  modelManifestSchema,
} from './model-layout.js';
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
  VERSION_STAGE,
  VERSION_STAGE_TAG,
  type VersionStage,
  versionStageTags,
} from './version-stage.js';
