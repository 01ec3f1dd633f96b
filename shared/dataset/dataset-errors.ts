import { areaError, errorKind } from '../headstart-error.js';

/**
 * Errors about uploads and the dataset they build. `code` is what quarantine records and the CLI show. A command
 * that stops on one ends with exit code 2: it names a project, label or file the user gave.
 */
export class DatasetError extends areaError('DatasetError', { exitCode: 2 }) {}

/** The upload's key does not follow `uploads/<project>/<label>/<file>` or names something not allowed. */
export class UploadKeyError extends DatasetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UploadKeyError';
  }
}

/** The upload is larger than the configured byte limit: 413 to a client. */
export class UploadTooLargeError extends errorKind(DatasetError, {
  name: 'UploadTooLargeError',
  code: 'upload_too_large',
  status: 413,
}) {}

/** A stored feature file is not one Headstart wrote, or was cut short. */
export class FeatureFileError extends errorKind(DatasetError, {
  name: 'FeatureFileError',
  code: 'invalid_feature_file',
}) {}

/** Someone kept winning the race for a dataset index shard; the event is retried later. */
export class IndexContentionError extends errorKind(DatasetError, {
  name: 'IndexContentionError',
  code: 'index_contention',
}) {}

/** A relabel or removal named an upload that is not there (exit 1: the key is well formed, the file is gone). */
export class UnknownUploadError extends errorKind(DatasetError, {
  name: 'UnknownUploadError',
  code: 'unknown_upload',
  status: 404,
  exitCode: 1,
}) {}

/** A relabel would overwrite a file of the same name with other bytes under the new label. */
export class UploadExistsError extends errorKind(DatasetError, {
  name: 'UploadExistsError',
  code: 'upload_exists',
  status: 409,
  exitCode: 1,
}) {}

/** A text upload that cannot be a training example: empty, too long, not UTF-8, or binary. */
export class TextUploadError extends DatasetError {
  constructor(
    code: 'empty_text' | 'text_too_long' | 'invalid_utf8' | 'binary_text',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'TextUploadError';
  }
}

/** An upload of the other modality than its project's (a photo in a text project, or a text among photos). */
export class ModalityMismatchError extends errorKind(DatasetError, {
  name: 'ModalityMismatchError',
  code: 'modality_mismatch',
  status: 409,
}) {}
