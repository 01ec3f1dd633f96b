import { areaError, errorKind } from '../headstart-error.js';

/**
 * Errors raised by an object store, whatever its backend. None has an HTTP status: to a client of the API a
 * store failure is the server's, and the messages name keys and endpoints a client should not see.
 */
export class StoreError extends areaError('StoreError') {}

/**
 * A conditional write lost: create-if-absent found an object, or replace-if-ETag-matches found a different
 * ETag (or no object at all). Callers usually re-read and decide again rather than retry blindly.
 */
export class PreconditionFailedError extends errorKind(StoreError, {
  name: 'PreconditionFailedError',
  code: 'precondition_failed',
}) {}

/** An operation that needs an existing object (replacing its tags) found none under the key. */
export class NoSuchKeyError extends errorKind(StoreError, { name: 'NoSuchKeyError', code: 'no_such_key' }) {}

/** The key cannot name an object in this store (empty, too long, control characters, path traversal...). */
export class InvalidKeyError extends errorKind(StoreError, {
  name: 'InvalidKeyError',
  code: 'invalid_key',
}) {}

/** Put options the store cannot carry faithfully (metadata or tags, content type, conflicting conditions). */
export class InvalidOptionsError extends errorKind(StoreError, {
  name: 'InvalidOptionsError',
  code: 'invalid_options',
}) {}

/** The store could not be reached or answered with a server-side failure; retrying later may succeed. */
export class StoreUnavailableError extends errorKind(StoreError, {
  name: 'StoreUnavailableError',
  code: 'store_unavailable',
}) {}

/** A stored object is unreadable (truncated or foreign file in an FS store). */
export class CorruptObjectError extends errorKind(StoreError, {
  name: 'CorruptObjectError',
  code: 'corrupt_object',
}) {}
