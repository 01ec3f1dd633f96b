import { createHash } from 'node:crypto';
import { DOWNSCALE_HINT } from '../backbone/index.js';
import { DatasetError, UploadTooLargeError } from '../dataset/dataset-errors.js';
import { decodeTextUpload, modalityOfKey } from '../dataset/text-upload.js';
import { parseUploadKey } from '../dataset/upload-key.js';
import { decodeImage, ImageError, probeImage } from '../image/index.js';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';

export type PhotoUpload =
  | { status: 'uploaded' | 'skipped'; key: string }
  | { status: 'refused'; code: string; message: string };

const CONTENT_TYPES = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' } as const;

/** `30.0 MB`: the unit the README states limits in (MiB, as 20 * 1024 * 1024). */
export const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/**
 * One photo (or, named `*.txt`, one text) into `uploads/<project>/<label>/<file>`, refused with its reason when
 * the stack would only set it aside (a bad name, over the byte limit, not a decodable image or not a usable
 * text), skipped when the same bytes are already there
 * (the ETag is the MD5 of the body). The content type is sniffed from the bytes.
 */
export async function uploadPhoto(
  store: ObjectStore,
  photo: { project: string; label: string; file: string; bytes: Uint8Array; maxUploadBytes: number },
): Promise<PhotoUpload> {
  try {
    const { key } = parseUploadKey(layout.upload(photo.project, photo.label, photo.file));
    if (photo.bytes.byteLength > photo.maxUploadBytes) {
      throw new UploadTooLargeError(
        `file is ${megabytes(photo.bytes.byteLength)}, over the ${megabytes(photo.maxUploadBytes)} upload limit (HEADSTART_MAX_UPLOAD_BYTES); downscale it: ${DOWNSCALE_HINT}`,
      );
    }
    const text = modalityOfKey(key) === 'text';
    if (text) decodeTextUpload(photo.bytes);
    else await decodeImage(photo.bytes, { size: 32 });
    const md5 = `"${createHash('md5').update(photo.bytes).digest('hex')}"`;
    if ((await store.head(key))?.etag === md5) return { status: 'skipped', key };
    const contentType = text
      ? 'text/plain; charset=utf-8'
      : CONTENT_TYPES[(await probeImage(photo.bytes)).format];
    await store.put(key, photo.bytes, { contentType });
    return { status: 'uploaded', key };
  } catch (err) {
    if (err instanceof DatasetError || err instanceof ImageError) {
      return { status: 'refused', code: err.code, message: err.message };
    }
    throw err;
  }
}
