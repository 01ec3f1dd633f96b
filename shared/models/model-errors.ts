import { areaError, errorKind } from '../headstart-error.js';

/** Errors about trained model versions and the pointer that names the current one. */
export class ModelError extends areaError('ModelError') {}

/** The project has no current version yet (nothing trained or promoted): 404 to a client. */
export class NoModelError extends errorKind(ModelError, {
  name: 'NoModelError',
  code: 'no_model',
  status: 404,
}) {}

/** A version's files are missing, malformed, or do not hash to what its manifest says. */
export class InvalidVersionError extends errorKind(ModelError, {
  name: 'InvalidVersionError',
  code: 'invalid_version',
}) {}

/** Someone else flipped the pointer between our read and our write: 409 to a client. */
export class PointerConflictError extends errorKind(ModelError, {
  name: 'PointerConflictError',
  code: 'pointer_conflict',
  status: 409,
}) {}

/** A version name the project does not have (a rollback to it, say): 404 to a client, exit 1 at the command line. */
export class UnknownVersionError extends errorKind(ModelError, {
  name: 'UnknownVersionError',
  code: 'unknown_version',
  status: 404,
  exitCode: 1,
}) {}
