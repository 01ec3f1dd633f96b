import { z } from 'zod';
import { createFsStore, type StoreChangeEvent } from './fs-store.js';
import type { ObjectStore } from './object-store.js';
import { createS3Store, type S3StoreOptions } from './s3-store.js';

/**
 * Where a store's objects live, as plain data: the one shape every entry turns its configuration into (flags,
 * environment, baked constants), and what crosses a thread boundary, where a store object cannot (the local
 * stack's API thread and each worker open their own store from the same spec). Without a region the S3 client
 * takes us-east-1.
 */
export const storeSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('fs'), root: z.string().min(1) }),
  z.object({
    kind: z.literal('s3'),
    bucket: z.string().min(3),
    region: z.string().min(1).optional(),
    endpoint: z.string().url().optional(),
  }),
]);
export type StoreSpec = z.infer<typeof storeSpecSchema>;

/** The S3 store options of a spec: an S3-compatible endpoint is addressed path-style. */
export function s3StoreOptions(spec: Extract<StoreSpec, { kind: 's3' }>): S3StoreOptions {
  return {
    bucket: spec.bucket,
    ...(spec.region !== undefined ? { region: spec.region } : {}),
    ...(spec.endpoint ? { endpoint: spec.endpoint, forcePathStyle: true } : {}),
  };
}

/** The one place a store is built from configuration. */
export function openStore(
  spec: StoreSpec,
  options: { onChange?: (e: StoreChangeEvent) => void } = {},
): ObjectStore {
  return spec.kind === 'fs'
    ? createFsStore({ root: spec.root, ...(options.onChange ? { onChange: options.onChange } : {}) })
    : createS3Store(s3StoreOptions(spec));
}
