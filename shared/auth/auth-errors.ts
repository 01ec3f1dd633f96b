import { areaError } from '../headstart-error.js';

/** Errors about API keys: creating, listing, revoking and checking them. */
export class AuthError extends areaError('AuthError') {}

/** A stored key record is not one Headstart wrote (hand-edited, truncated, or from another tool). */
export class InvalidKeyRecordError extends AuthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_key_record', message, options);
    this.name = 'InvalidKeyRecordError';
  }
}

/** Arguments that cannot name a key: a project or key id outside the allowed characters. 400 to a client. */
export class InvalidKeyArgumentError extends AuthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_key_argument', message, { ...options, status: 400 });
    this.name = 'InvalidKeyArgumentError';
  }
}
