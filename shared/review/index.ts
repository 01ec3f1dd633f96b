export {
  AmbiguousReviewIdError,
  ReviewAlreadyLabelledError,
  ReviewError,
  ReviewItemNotFoundError,
} from './review-errors.js';
export {
  REVIEW_FORMATS,
  REVIEW_REASONS,
  type ReviewFormat,
  type ReviewItem,
  type ReviewReason,
  reviewIdSchema,
  reviewItemSchema,
} from './review-item.js';
export {
  discardReviewItem,
  type LabelResult,
  labelReviewItem,
  listReviewItems,
  type ReviewListing,
  reviewUploadKey,
} from './review-queue.js';
