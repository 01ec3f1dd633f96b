import { checkLabel } from '../dataset/upload-key.js';
import { layout, parseReviewRecordKey } from '../layout/index.js';
import { mapLimit } from '../map-limit.js';
import { type ObjectStore, PreconditionFailedError, readJson } from '../store/index.js';
import {
  AmbiguousReviewIdError,
  ReviewAlreadyLabelledError,
  ReviewError,
  ReviewItemNotFoundError,
} from './review-errors.js';
import { REVIEW_FORMATS, type ReviewItem, type ReviewReason, reviewItemSchema } from './review-item.js';

/** One queued item as `headstart review list` shows it. */
export interface ReviewListing {
  id: string;
  prediction: { label: string; score: number };
  unknown: boolean | null;
  outlierScore: number | null;
  createdAt: string;
  version: string;
  reason: ReviewReason;
  /** A text item's text. */
  text?: string;
}

const listingOf = (i: ReviewItem): ReviewListing => ({
  id: i.id,
  prediction: i.prediction,
  unknown: i.unknown,
  outlierScore: i.outlierScore,
  createdAt: i.createdAt,
  version: i.version,
  reason: i.reason,
  ...(i.text !== undefined ? { text: i.text } : {}),
});

/**
 * The queued items, oldest first, at most `limit` of them read, and how many are queued in all. Ordered by the
 * records' write times from the listing, so only the items shown are downloaded.
 */
export async function listReviewItems(
  store: ObjectStore,
  project: string,
  options: { limit?: number } = {},
): Promise<{ items: ReviewListing[]; total: number }> {
  const found: { id: string; at: number }[] = [];
  for await (const o of store.list(layout.reviewItemsPrefix(project))) {
    const parsed = parseReviewRecordKey(o.key);
    if (parsed?.state === 'queued') found.push({ id: parsed.id, at: o.lastModified.getTime() });
  }
  found.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
  const shown = found.slice(0, options.limit ?? found.length);
  const items = await mapLimit(shown, 8, (f) =>
    readJson(store, layout.reviewItem(project, f.id), reviewItemSchema),
  );
  // An item discarded or labelled between the listing and the read is simply gone.
  return { items: items.flatMap((i) => (i ? [listingOf(i)] : [])), total: found.length };
}

const ID_PREFIX = /^[0-9a-f]{6,64}$/;

async function idsUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of store.list(prefix)) {
    const parsed = parseReviewRecordKey(o.key);
    if (parsed) ids.push(parsed.id);
  }
  return ids;
}

/** The one id under `prefix` that starts with `given`, undefined if none; ambiguous prefixes are refused. */
async function resolveUnder(
  store: ObjectStore,
  prefix: (project: string) => string,
  project: string,
  given: string,
): Promise<string | undefined> {
  const ids = await idsUnder(store, `${prefix(project)}${given}`);
  if (ids.includes(given)) return given;
  if (ids.length > 1) {
    throw new AmbiguousReviewIdError(
      `'${given}' is the start of ${ids.length} review items of '${project}'; give more of the id`,
    );
  }
  return ids[0];
}

function checkId(given: string): string {
  const id = given.trim().toLowerCase();
  if (!ID_PREFIX.test(id)) {
    throw new ReviewError(
      'invalid_review_id',
      `'${given}' is not a review item id (at least the first 6 hex digits of one, from \`headstart review list\`)`,
    );
  }
  return id;
}

function notFound(project: string, given: string): ReviewItemNotFoundError {
  return new ReviewItemNotFoundError(
    `project '${project}' has no review item '${given}' (\`headstart review list --project ${project}\` lists them)`,
  );
}

async function queuedItem(store: ObjectStore, project: string, id: string): Promise<ReviewItem | undefined> {
  return readJson(store, layout.reviewItem(project, id), reviewItemSchema);
}

export interface LabelResult {
  id: string;
  label: string;
  /** The upload the item became: `uploads/<project>/<label>/review-<id>.<ext>`. */
  upload: string;
  /** False when the upload was there already (the item had been labelled so before): nothing new to train on. */
  created: boolean;
}

/** The upload key a review item becomes under `label`: named by its id, so labelling again writes nothing new. */
export function reviewUploadKey(project: string, label: string, item: Pick<ReviewItem, 'id' | 'format'>) {
  return layout.upload(project, label, `review-${item.id}.${REVIEW_FORMATS[item.format].ext}`);
}

/**
 * Turns a queued item into an upload of `label`, which retrains like any other upload. Then the record moves
 * to `labelled/` (so the same id labelled again is a no-op) and the review copy of the image is deleted: the
 * upload holds the bytes now. Each step can be repeated after a crash.
 */
export async function labelReviewItem(
  store: ObjectStore,
  options: { project: string; id: string; label: string; now?: () => Date },
): Promise<LabelResult> {
  const { project } = options;
  const label = checkLabel(options.label);
  const given = checkId(options.id);
  const id = await resolveUnder(store, layout.reviewItemsPrefix, project, given);
  const item = id ? await queuedItem(store, project, id) : undefined;
  if (!item) return alreadyLabelled(store, project, given, label);
  const image = await store.get(layout.reviewImage(project, item.id));
  if (!image) {
    throw new ReviewItemNotFoundError(
      `review item ${item.id} of '${project}' has lost its ${item.format === 'txt' ? 'text' : 'image'} (expired?); discard it with \`headstart review discard --project ${project} ${item.id}\``,
    );
  }
  const upload = reviewUploadKey(project, label, item);
  let created = true;
  try {
    await store.put(upload, image.body, {
      contentType: REVIEW_FORMATS[item.format].contentType,
      ifNoneMatch: '*',
    });
  } catch (err) {
    // Written by an earlier attempt (or an earlier time these bytes were queued): the same bytes, by its name.
    if (!(err instanceof PreconditionFailedError)) throw err;
    created = false;
  }
  const at = (options.now ?? (() => new Date()))().toISOString();
  const labelled: ReviewItem = { ...item, labelled: { label, upload, at } };
  await store.put(layout.reviewLabelled(project, item.id), JSON.stringify(labelled), {
    contentType: 'application/json',
  });
  await store.delete(layout.reviewItem(project, item.id));
  await store.delete(layout.reviewImage(project, item.id));
  return { id: item.id, label, upload, created };
}

async function alreadyLabelled(
  store: ObjectStore,
  project: string,
  given: string,
  label: string,
): Promise<LabelResult> {
  const id = await resolveUnder(store, layout.reviewLabelledPrefix, project, given);
  const done = id ? await readJson(store, layout.reviewLabelled(project, id), reviewItemSchema) : undefined;
  if (!done?.labelled) throw notFound(project, given);
  if (done.labelled.label !== label) {
    throw new ReviewAlreadyLabelledError(
      `review item ${done.id} of '${project}' was already labelled '${done.labelled.label}' and is the upload ${done.labelled.upload}; move or delete that upload to change its label`,
    );
  }
  return { id: done.id, label, upload: done.labelled.upload, created: false };
}

/** Removes a queued item, record first (so it stops existing), then its image. */
export async function discardReviewItem(
  store: ObjectStore,
  options: { project: string; id: string },
): Promise<{ id: string }> {
  const { project } = options;
  const given = checkId(options.id);
  const id = await resolveUnder(store, layout.reviewItemsPrefix, project, given);
  if (!id) throw notFound(project, given);
  await store.delete(layout.reviewItem(project, id));
  await store.delete(layout.reviewImage(project, id));
  return { id };
}
