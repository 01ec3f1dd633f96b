import { areaError, errorKind } from '../headstart-error.js';

/** Errors about the review queue. A command that stops on one ends with exit code 2: it names an item or label. */
export class ReviewError extends areaError('ReviewError', { exitCode: 2 }) {}

export class ReviewItemNotFoundError extends errorKind(ReviewError, {
  name: 'ReviewItemNotFoundError',
  code: 'review_item_not_found',
}) {}

/** An id prefix that names more than one item. */
export class AmbiguousReviewIdError extends errorKind(ReviewError, {
  name: 'AmbiguousReviewIdError',
  code: 'ambiguous_review_id',
}) {}

/** The item was already labelled as another label; the upload it became is where to change that. */
export class ReviewAlreadyLabelledError extends errorKind(ReviewError, {
  name: 'ReviewAlreadyLabelledError',
  code: 'review_already_labelled',
}) {}
