import { createHash } from 'node:crypto';
import { z } from 'zod';
import { layout } from '../layout/index.js';
import { type ObjectStore, readJson } from '../store/index.js';
import { projectOf } from './upload-key.js';

/**
 * Uploads Headstart refuses are set aside, never dropped: a copy of the bytes and a machine-readable reason go
 * under `quarantine/<project>/` (or `quarantine/_unsorted/` when the key names no valid project). The original
 * upload is left where the user put it; deleting or replacing it clears the record.
 */
export const quarantineRecordSchema = z.object({
  key: z.string(),
  project: z.string().optional(),
  code: z.string(),
  message: z.string(),
  sha256: z.string().optional(),
  bytes: z.number().int().nonnegative(),
  etag: z.string().optional(),
  sequencer: z.string(),
  at: z.string(),
});
export type QuarantineRecord = z.infer<typeof quarantineRecordSchema>;

export const UNSORTED = '_unsorted';

export function quarantineBase(key: string): string {
  return `${layout.quarantinePrefix(projectOf(key) ?? UNSORTED)}${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

export async function putQuarantine(
  store: ObjectStore,
  record: QuarantineRecord,
  body?: Uint8Array,
): Promise<void> {
  const base = quarantineBase(record.key);
  // The copy first, then the record that points at it.
  if (body && body.byteLength > 0) await store.put(`${base}.bin`, body);
  await store.put(`${base}.json`, JSON.stringify(record), { contentType: 'application/json' });
}

export async function readQuarantine(store: ObjectStore, key: string): Promise<QuarantineRecord | undefined> {
  return readJson(store, `${quarantineBase(key)}.json`, quarantineRecordSchema);
}

export async function clearQuarantine(store: ObjectStore, key: string): Promise<void> {
  const base = quarantineBase(key);
  await store.delete(`${base}.json`);
  await store.delete(`${base}.bin`);
}

export async function listQuarantine(store: ObjectStore, project: string): Promise<QuarantineRecord[]> {
  const out: QuarantineRecord[] = [];
  for await (const o of store.list(layout.quarantinePrefix(project))) {
    if (!o.key.endsWith('.json')) continue;
    const record = await readJson(store, o.key, quarantineRecordSchema);
    if (record) out.push(record);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}
