import { z } from 'zod';
import { createFsStore, createS3Store, type ObjectStore, type StoreChangeEvent } from '../store/index.js';

/**
 * Where a local stack's objects live, as plain data: a store object cannot cross a thread boundary, so the API
 * thread and each worker open their own store from the same spec.
 */
export const storeSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('fs'), root: z.string().min(1) }),
  z.object({
    kind: z.literal('s3'),
    bucket: z.string().min(3),
    region: z.string().min(1),
    endpoint: z.string().url().optional(),
  }),
]);
export type StoreSpec = z.infer<typeof storeSpecSchema>;

export function openStore(
  spec: StoreSpec,
  options: { onChange?: (e: StoreChangeEvent) => void } = {},
): ObjectStore {
  return spec.kind === 'fs'
    ? createFsStore({ root: spec.root, ...(options.onChange ? { onChange: options.onChange } : {}) })
    : createS3Store({
        bucket: spec.bucket,
        region: spec.region,
        ...(spec.endpoint ? { endpoint: spec.endpoint, forcePathStyle: true } : {}),
      });
}
