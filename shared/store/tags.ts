import type { ObjectStore } from './object-store.js';
import { NoSuchKeyError } from './store-errors.js';
import { parseTags } from './store-input.js';

/**
 * Replaces the tags of the existing object under `key`, through the store's `putTags` when it has one. A store
 * without it (a wrapper that does not forward it) gets the same result the long way: the object is read and put
 * back with the same bytes, content type and metadata and the new tags, on condition that its ETag has not
 * changed in between, so this never creates an object and never overwrites a newer one. Either way a missing key
 * fails with `NoSuchKeyError`.
 */
export async function replaceTags(
  store: ObjectStore,
  key: string,
  tags: Record<string, string>,
): Promise<void> {
  if (store.putTags) return store.putTags(key, tags);
  const valid = parseTags(tags);
  const current = await store.get(key);
  if (!current) throw new NoSuchKeyError(`tag ${store.description}/${key}: no such object`);
  await store.put(key, current.body, {
    contentType: current.contentType,
    metadata: current.metadata,
    tags: valid,
    ifMatch: current.etag,
  });
}
