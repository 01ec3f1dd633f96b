import { areaError, errorKind } from '../headstart-error.js';

/** Errors about API keys: creating, listing, revoking and checking them. */
export class AuthError extends areaError('AuthError') {}

/** A stored key record is not one Headstart wrote (hand-edited, truncated, or from another tool). */
export class InvalidKeyRecordError extends errorKind(AuthError, {
  name: 'InvalidKeyRecordError',
  code: 'invalid_key_record',
}) {}

/** Arguments that cannot name a key: a project or key id outside the allowed characters. 400 to a client. */
export class InvalidKeyArgumentError extends errorKind(AuthError, {
  name: 'InvalidKeyArgumentError',
  code: 'invalid_key_argument',
  status: 400,
}) {}
