import { areaError } from '../headstart-error.js';

/** Errors about trained model versions and the pointer that names the current one. */
export class ModelError extends areaError('ModelError') {}

/** The project has no current version yet (nothing trained or promoted): 404 to a client. */
export class NoModelError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('no_model', message, { ...options, status: 404 });
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

/** Someone else flipped the pointer between our read and our write: 409 to a client. */
export class PointerConflictError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('pointer_conflict', message, { ...options, status: 409 });
    this.name = 'PointerConflictError';
  }
}
