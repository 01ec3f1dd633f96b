import { areaError, errorKind } from '../headstart-error.js';

/**
 * Errors raised while fine-tuning or loading a fine-tuned top. Callers branch on `code` (stable, machine-readable)
 * and show `message` to people.
 */
export class FineTuneError extends areaError('FineTuneError') {}

/** The graph cannot be split at the requested cut, or holds an op the trainable top cannot differentiate. */
export class UnsupportedTopError extends errorKind(FineTuneError, {
  name: 'UnsupportedTopError',
  code: 'unsupported_top',
}) {}

/** A serialized top is malformed, its weights do not hash to its descriptor, or it needs another trunk. */
export class InvalidTopError extends errorKind(FineTuneError, {
  name: 'InvalidTopError',
  code: 'invalid_top',
}) {}

/** The examples handed to fineTune do not match the top (shape, labels, splits). */
export class InvalidFineTuneInputError extends errorKind(FineTuneError, {
  name: 'InvalidFineTuneInputError',
  code: 'invalid_finetune_input',
}) {}
