import { areaError, errorKind } from '../headstart-error.js';

/** Errors of the text backbone: building it from its source, loading it, featurizing texts. */
export class TextError extends areaError('TextError') {}

/** The word-vector source (the npm package's JSON) is not shaped as expected. */
export class TextVectorSourceError extends errorKind(TextError, {
  name: 'TextVectorSourceError',
  code: 'text_vector_source',
}) {}

/** A stored text backbone is malformed or does not match its manifest. */
export class InvalidTextBackboneError extends errorKind(TextError, {
  name: 'InvalidTextBackboneError',
  code: 'invalid_text_backbone',
}) {}

/** The text backbone is not in the store. */
export class TextBackboneNotFoundError extends errorKind(TextError, {
  name: 'TextBackboneNotFoundError',
  code: 'text_backbone_not_found',
}) {}
