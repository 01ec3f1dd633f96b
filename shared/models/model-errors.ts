/** Errors about trained model versions and the pointer that names the current one. */
export class ModelError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelError';
    this.code = code;
  }
}

/** The project has no current version yet (nothing trained or promoted). */
export class NoModelError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('no_model', message, options);
    this.name = 'NoModelError';
  }
}

/** A version's files are missing, malformed, or do not hash to what its manifest says. */
export class InvalidVersionError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_version', message, options);
    this.name = 'InvalidVersionError';
  }
}

/** Someone else flipped the pointer between our read and our write. */
export class PointerConflictError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('pointer_conflict', message, options);
    this.name = 'PointerConflictError';
  }
}
