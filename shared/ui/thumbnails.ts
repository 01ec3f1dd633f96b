import { createHash } from 'node:crypto';
import { encodeThumbnail, type ImageFormat } from '../image/index.js';
import type { ObjectStore } from '../store/index.js';

export interface ThumbnailCache {
  /** The thumbnail of the object under `key`, or undefined when there is no such object. Image errors throw. */
  get(key: string): Promise<{ bytes: Uint8Array; format: ImageFormat; etag: string } | undefined>;
}

export const THUMBNAIL_SIZE = 112;

/**
 * Thumbnails made through the image path, kept in memory by the source's ETag (least recently used first out),
 * so a page of photos costs one decode per photo once, and a replaced photo gets a new thumbnail.
 */
export function createThumbnailCache(options: { store: ObjectStore; maxEntries: number }): ThumbnailCache {
  const entries = new Map<string, { bytes: Uint8Array; format: ImageFormat; etag: string }>();
  const making = new Map<string, Promise<{ bytes: Uint8Array; format: ImageFormat; etag: string }>>();
  return {
    async get(key) {
      const head = await options.store.head(key);
      if (!head) return undefined;
      const id = `${key}\n${head.etag}`;
      const hit = entries.get(id);
      if (hit) {
        entries.delete(id);
        entries.set(id, hit);
        return hit;
      }
      let pending = making.get(id);
      if (!pending) {
        pending = (async () => {
          const source = await options.store.get(key);
          if (!source) throw new Error(`${key} went away`);
          const thumb = await encodeThumbnail(source.body, { size: THUMBNAIL_SIZE });
          const etag = `"${createHash('sha256').update(thumb.bytes).digest('hex').slice(0, 32)}"`;
          return { ...thumb, etag };
        })().finally(() => making.delete(id));
        making.set(id, pending);
      }
      const made = await pending;
      entries.set(id, made);
      if (entries.size > options.maxEntries) entries.delete(entries.keys().next().value!);
      return made;
    },
  };
}
