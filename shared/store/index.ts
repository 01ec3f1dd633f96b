export type { FsStoreOptions, StoreChangeEvent } from './fs-store.js';
export { createFsStore } from './fs-store.js';
export type {
  ListOptions,
  NotModified,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
} from './object-store.js';
export { isNotModified } from './object-store.js';
export { type ParseJsonOptions, parseJson, readJson } from './read-json.js';
export type { S3StoreOptions } from './s3-store.js';
export { createS3Store } from './s3-store.js';
export {
  CorruptObjectError,
  InvalidKeyError,
  InvalidOptionsError,
  NoSuchKeyError,
  PreconditionFailedError,
  StoreError,
  StoreUnavailableError,
} from './store-errors.js';
export { openStore, type StoreSpec, s3StoreOptions, storeSpecSchema } from './store-spec.js';
