import { z } from 'zod';

/** Why the API kept a photo or text: its outlier detector called it unknown, its top score was low, or it was sampled. */
export const REVIEW_REASONS = ['unknown', 'low_score', 'sample'] as const;
export type ReviewReason = (typeof REVIEW_REASONS)[number];

/** A review item's id: the sha256 of its body (the photo, or the text in UTF-8), so the same bytes are one item. */
export const reviewIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex');

/** What a review item's body is: a photo's format, or `txt` for a text project's text. */
const formatSchema = z.enum(['jpeg', 'png', 'webp', 'txt']);
export type ReviewFormat = z.infer<typeof formatSchema>;

/** `review/<project>/items/<id>.json`: written after its body, it is what makes an item exist. */
export const reviewItemSchema = z.object({
  id: reviewIdSchema,
  format: formatSchema,
  bytes: z.number().int().nonnegative(),
  /** The version's top label and its score, whatever the request's topK, minScore or rejectUnknown. */
  prediction: z.object({ label: z.string(), score: z.number() }),
  unknown: z.boolean().nullable(),
  outlierScore: z.number().nullable(),
  reason: z.enum(REVIEW_REASONS),
  createdAt: z.string().datetime(),
  version: z.string(),
  /** A text item's text (at most 10,000 characters), so listing the queue needs no second read per item. */
  text: z.string().optional(),
  /** Set once a person labelled it: the upload it became. Kept so labelling again is a no-op. */
  labelled: z.object({ label: z.string(), upload: z.string(), at: z.string().datetime() }).optional(),
});
export type ReviewItem = z.infer<typeof reviewItemSchema>;

/** The file extension and content type of a review item's body, by its format. */
export const REVIEW_FORMATS: Record<ReviewFormat, { ext: string; contentType: string }> = {
  jpeg: { ext: 'jpg', contentType: 'image/jpeg' },
  png: { ext: 'png', contentType: 'image/png' },
  webp: { ext: 'webp', contentType: 'image/webp' },
  txt: { ext: 'txt', contentType: 'text/plain; charset=utf-8' },
};
