import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectStore } from '../../shared/store/index.js';

/** `base` with some methods replaced. */
export function wrapStore(base: ObjectStore, overrides: Partial<ObjectStore>): ObjectStore {
  return {
    description: base.description,
    get: (k) => base.get(k),
    getIfChanged: (k, e) => base.getIfChanged(k, e),
    head: (k) => base.head(k),
    put: (k, b, o) => base.put(k, b, o),
    putTags: (k, t) => base.putTags(k, t),
    getTags: (k) => base.getTags(k),
    delete: (k) => base.delete(k),
    list: (p, o) => base.list(p, o),
    ...overrides,
  };
}

/** The store, recording every key whose body was read: what the code under test downloaded. */
export function recordingReads(base: ObjectStore): { store: ObjectStore; reads: string[] } {
  const reads: string[] = [];
  const store = wrapStore(base, {
    get: (k) => {
      reads.push(k);
      return base.get(k);
    },
    getIfChanged: (k, e) => {
      reads.push(k);
      return base.getIfChanged(k, e);
    },
  });
  return { store, reads };
}

/** Writes an object the way another tool would, past the store's own checks. */
export type RawPut = (key: string, body: Uint8Array) => Promise<void>;

/** Into a file-system store's directory, as `cp` into the home would (no Headstart header). */
export function fsRawPut(root: string): RawPut {
  return async (key, body) => {
    const file = join(root, 'objects', ...key.split('/'));
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, body);
  };
}

/** Straight to the bucket with the S3 client, as `aws s3 cp` would. */
export function s3RawPut(client: S3Client, bucket: string): RawPut {
  return async (key, body) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  };
}
