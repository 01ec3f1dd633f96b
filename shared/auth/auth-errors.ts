/** Errors about API keys: creating, listing, revoking and checking them. */
export class AuthError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuthError';
    this.code = code;
  }
}

/** A stored key record is not one Headstart wrote (hand-edited, truncated, or from another tool). */
export class InvalidKeyRecordError extends AuthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_key_record', message, options);
    this.name = 'InvalidKeyRecordError';
  }
}

/** Arguments that cannot name a key: a project or key id outside the allowed characters. */
export class InvalidKeyArgumentError extends AuthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_key_argument', message, options);
    this.name = 'InvalidKeyArgumentError';
  }
}
