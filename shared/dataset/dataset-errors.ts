/** Errors about uploads and the dataset they build. `code` is what quarantine records and the CLI show. */
export class DatasetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatasetError';
    this.code = code;
  }
}

/** The upload's key does not follow `uploads/<project>/<label>/<file>` or names something not allowed. */
export class UploadKeyError extends DatasetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UploadKeyError';
  }
}

/** The upload is larger than the configured byte limit. */
export class UploadTooLargeError extends DatasetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('upload_too_large', message, options);
    this.name = 'UploadTooLargeError';
  }
}

/** A stored feature file is not one Headstart wrote, or was cut short. */
export class FeatureFileError extends DatasetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_feature_file', message, options);
    this.name = 'FeatureFileError';
  }
}

/** Someone kept winning the race for a dataset index shard; the event is retried later. */
export class IndexContentionError extends DatasetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('index_contention', message, options);
    this.name = 'IndexContentionError';
  }
}
