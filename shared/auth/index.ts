export {
  type ApiKeyInfo,
  type CreatedApiKey,
  type CreateKeyOptions,
  checkApiKey,
  createKey,
  createKeyVerifier,
  hashApiKey,
  type KeyCheck,
  type KeyVerifier,
  type KeyVerifierOptions,
  listKeys,
  parseApiKey,
  revokeKey,
} from './api-keys.js';
export { AuthError, InvalidKeyArgumentError, InvalidKeyRecordError } from './auth-errors.js';
