import { areaError } from '../headstart-error.js';

/**
 * Errors raised by an object store, whatever its backend. None has an HTTP status: to a client of the API a
 * store failure is the server's, and the messages name keys and endpoints a client should not see.
 */
export class StoreError extends areaError('StoreError') {}

/**
 * A conditional write lost: create-if-absent found an object, or replace-if-ETag-matches found a different
 * ETag (or no object at all). Callers usually re-read and decide again rather than retry blindly.
 */
export class PreconditionFailedError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('precondition_failed', message, options);
    this.name = 'PreconditionFailedError';
  }
}

/** An operation that needs an existing object (replacing its tags) found none under the key. */
export class NoSuchKeyError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('no_such_key', message, options);
    this.name = 'NoSuchKeyError';
  }
}

/** The key cannot name an object in this store (empty, too long, control characters, path traversal...). */
export class InvalidKeyError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_key', message, options);
    this.name = 'InvalidKeyError';
  }
}

/** Put options the store cannot carry faithfully (metadata or tags, content type, conflicting conditions). */
export class InvalidOptionsError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_options', message, options);
    this.name = 'InvalidOptionsError';
  }
}

/** The store could not be reached or answered with a server-side failure; retrying later may succeed. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A stored object is unreadable (truncated or foreign file in an FS store). */
export class CorruptObjectError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('corrupt_object', message, options);
    this.name = 'CorruptObjectError';
  }
}
