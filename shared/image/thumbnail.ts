import sharp from 'sharp';
import { decodeImage, type ImageFormat, probeImage } from './decode-image.js';

export interface Thumbnail {
  bytes: Uint8Array;
  /** Sniffed from the encoded bytes, never taken from the source's name or stored content type. */
  format: ImageFormat;
}

/**
 * A size x size JPEG of a photo for people to look at, through the same decode path the model sees (EXIF
 * orientation, alpha on white, sRGB, lanczos3, centre crop), so a thumbnail shows what was trained on.
 */
export async function encodeThumbnail(
  bytes: Uint8Array,
  options: { size: number; maxPixels?: number },
): Promise<Thumbnail> {
  const decoded = await decodeImage(bytes, {
    size: options.size,
    ...(options.maxPixels ? { maxPixels: options.maxPixels } : {}),
  });
  const jpeg = await sharp(decoded.data, { raw: { width: decoded.size, height: decoded.size, channels: 3 } })
    .jpeg({ quality: 82 })
    .toBuffer();
  const out = new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
  return { bytes: out, format: (await probeImage(out)).format };
}
