import sharp from 'sharp';
import { z } from 'zod';
import {
  CorruptImageError,
  EmptyImageError,
  ImageError,
  TooManyPixelsError,
  UnsupportedFormatError,
  ZeroDimensionError,
} from './image-errors.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** 'center-crop' keeps aspect ratio and loses the edges of the longer side; 'squash' keeps everything, distorted. */
export type ResizePolicy = 'center-crop' | 'squash';

/**
 * Training-time augmentations. They live here so augmented views go through exactly the same decode, colour and
 * resize steps as the views seen at inference.
 */
export type ImageView = 'identity' | 'hflip' | 'crop-tl' | 'crop-br';

export interface ImageProbe {
  format: ImageFormat;
  /** Width as displayed, i.e. after applying EXIF orientation. */
  width: number;
  /** Height as displayed, i.e. after applying EXIF orientation. */
  height: number;
  /** EXIF orientation tag (1-8) when the file has one. */
  orientation?: number;
}

export interface DecodeImageOptions {
  /** Output side length in pixels; the result is always size x size. */
  size: number;
  /** Refuse images with more stored pixels than this, judged from the header before decoding. */
  maxPixels?: number;
  policy?: ResizePolicy;
  view?: ImageView;
}

export interface DecodedImage {
  /** RGB, 8 bits per channel, row-major HWC: size * size * 3 bytes. */
  data: Uint8Array;
  size: number;
  /** Source dimensions as displayed (after EXIF orientation). */
  sourceWidth: number;
  sourceHeight: number;
  format: ImageFormat;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

/** Crop views cut a size x size corner out of the resized image scaled up by this factor. */
export const CROP_VIEW_SCALE = 1.15;

const optionsSchema = z.object({
  size: z.number().int().min(1).max(4096),
  maxPixels: z.number().int().positive().optional(),
  policy: z.enum(['center-crop', 'squash']).optional(),
  view: z.enum(['identity', 'hflip', 'crop-tl', 'crop-br']).optional(),
});

/**
 * 'error' rather than sharp's default 'warning': libjpeg warns on harmless quirks that some cameras produce
 * (e.g. "N extraneous bytes before marker"), and 'warning' would reject those photos. 'error' still refuses
 * truncated JPEG/PNG/WebP and, unlike 'truncated', also PNG chunks whose CRC does not match.
 */
const FAIL_ON = 'error' as const;

type Sniffed = { supported: ImageFormat } | { unsupported: string };

function ascii(bytes: Uint8Array, start: number, length: number): string {
  if (bytes.length < start + length) return '';
  return String.fromCharCode(...bytes.subarray(start, start + length));
}

function sniffFormat(bytes: Uint8Array): Sniffed {
  const [b0, b1, b2, b3] = bytes;
  if (b0 === 0xff && b1 === 0xd8 && b2 === 0xff) return { supported: 'jpeg' };
  if (b0 === 0x89 && ascii(bytes, 1, 3) === 'PNG') return { supported: 'png' };
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return { supported: 'webp' };

  if (ascii(bytes, 0, 4) === 'GIF8') return { unsupported: 'gif' };
  if (ascii(bytes, 0, 2) === 'BM') return { unsupported: 'bmp' };
  if (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*') return { unsupported: 'tiff' };
  if (ascii(bytes, 4, 4) === 'ftyp') {
    const brand = ascii(bytes, 8, 4);
    if (brand === 'avif' || brand === 'avis') return { unsupported: 'avif' };
    if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) {
      return { unsupported: 'heic' };
    }
  }
  if ((b0 === 0xff && b1 === 0x0a) || ascii(bytes, 4, 4) === 'JXL ') return { unsupported: 'jxl' };
  if (ascii(bytes, 0, 4) === '8BPS') return { unsupported: 'psd' };
  if (ascii(bytes, 0, 5) === '%PDF-') return { unsupported: 'pdf' };
  if (b0 === 0 && b1 === 0 && b2 === 1 && b3 === 0) return { unsupported: 'ico' };
  const head = ascii(bytes, 0, Math.min(bytes.length, 512)).trimStart();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) {
    return { unsupported: 'svg' };
  }
  return { unsupported: 'unknown' };
}

function u16be(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function u32be(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

function u16le(b: Uint8Array, at: number): number {
  return (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
}

function u24le(b: Uint8Array, at: number): number {
  return (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16);
}

function u32le(b: Uint8Array, at: number): number {
  return u24le(b, at) + (b[at + 3] ?? 0) * 0x1000000;
}

const JPEG_SOF_MARKERS = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf,
]);

/** Position of each top-level JPEG marker, walking segment lengths; stops at the first scan (SOS). */
function jpegHeader(bytes: Uint8Array): { width?: number; height?: number; sos?: number; ranOut: boolean } {
  let at = 2;
  const result: { width?: number; height?: number; sos?: number; ranOut: boolean } = { ranOut: false };
  while (at < bytes.length) {
    if (bytes[at] !== 0xff) return result;
    while (bytes[at] === 0xff) at += 1;
    const marker = bytes[at];
    if (marker === undefined) break;
    at += 1;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (at + 2 > bytes.length) break;
    const length = u16be(bytes, at);
    if (JPEG_SOF_MARKERS.has(marker) && at + 7 <= bytes.length) {
      result.height = u16be(bytes, at + 3);
      result.width = u16be(bytes, at + 5);
    }
    if (marker === 0xda) {
      result.sos = at - 2;
      return result;
    }
    at += length;
  }
  result.ranOut = true;
  return result;
}

/** Dimensions straight from the header bytes, for files sharp refuses to open (it rejects a zero width outright). */
function headerDimensions(
  bytes: Uint8Array,
  format: ImageFormat,
): { width: number; height: number } | undefined {
  if (format === 'png') {
    if (ascii(bytes, 12, 4) !== 'IHDR' || bytes.length < 24) return undefined;
    return { width: u32be(bytes, 16), height: u32be(bytes, 20) };
  }
  if (format === 'jpeg') {
    const { width, height } = jpegHeader(bytes);
    return width === undefined || height === undefined ? undefined : { width, height };
  }
  const chunk = ascii(bytes, 12, 4);
  if (chunk === 'VP8 ' && bytes.length >= 30 && u24le(bytes, 23) === 0x2a019d) {
    return { width: u16le(bytes, 26) & 0x3fff, height: u16le(bytes, 28) & 0x3fff };
  }
  if (chunk === 'VP8L' && bytes.length >= 25) {
    const bits = u32le(bytes, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X' && bytes.length >= 30) {
    return { width: u24le(bytes, 24) + 1, height: u24le(bytes, 27) + 1 };
  }
  return undefined;
}

/**
 * Whether a file that failed to decode simply stops early. Judged from the container structure, because
 * decoder messages for it vary by format and library version.
 */
function looksTruncated(bytes: Uint8Array, format: ImageFormat, message: string): boolean {
  if (/premature end|truncated|unexpected end of/i.test(message) && !/data segment/i.test(message))
    return true;
  if (format === 'jpeg') {
    const header = jpegHeader(bytes);
    if (header.ranOut) return true;
    if (header.sos === undefined) return false;
    for (let i = bytes.length - 2; i > header.sos; i--) {
      if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return false;
    }
    return true;
  }
  if (format === 'png') {
    let at = 8;
    while (at + 8 <= bytes.length) {
      const type = ascii(bytes, at + 4, 4);
      if (!/^[A-Za-z]{4}$/.test(type)) return false;
      if (type === 'IEND') return false;
      at += 12 + u32be(bytes, at);
    }
    return true;
  }
  return 8 + u32le(bytes, 4) > bytes.length;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.trim() || 'decoder failed';
}

function toImageError(
  error: unknown,
  bytes: Uint8Array,
  format: ImageFormat,
  dims?: { width: number; height: number; maxPixels: number },
): ImageError {
  if (error instanceof ImageError) return error;
  const message = firstLine(error);
  if (dims && /exceeds pixel limit/i.test(message)) {
    return new TooManyPixelsError(dims.width, dims.height, dims.maxPixels, { cause: error });
  }
  return new CorruptImageError(`${format}: ${message}`, {
    cause: error,
    truncated: looksTruncated(bytes, format, message),
  });
}

interface Header {
  format: ImageFormat;
  /** As stored, which is what decoding costs. */
  storedWidth: number;
  storedHeight: number;
  probe: ImageProbe;
}

/** libvips' own input limit (0x3FFF squared), which it applies even to reading a header. */
const SHARP_PIXEL_LIMIT = 0x3fff * 0x3fff;

/**
 * Format and stored size, from the header. The size the header declares is checked against `maxPixels` (by
 * default libvips' own limit) before sharp sees the file: sharp refuses huge declared sizes with a message
 * about the pixel limit even when only reading metadata, and the refusal must say `too_many_pixels` whatever
 * the format.
 */
async function readHeader(bytes: Uint8Array, maxPixels = SHARP_PIXEL_LIMIT): Promise<Header> {
  if (bytes.length === 0) throw new EmptyImageError();
  const sniffed = sniffFormat(bytes);
  if ('unsupported' in sniffed) throw new UnsupportedFormatError(sniffed.unsupported);
  const format = sniffed.supported;

  const raw = headerDimensions(bytes, format);
  if (raw && (raw.width === 0 || raw.height === 0)) throw new ZeroDimensionError(raw.width, raw.height);
  if (raw && raw.width * raw.height > maxPixels)
    throw new TooManyPixelsError(raw.width, raw.height, maxPixels);

  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, { failOn: FAIL_ON }).metadata();
  } catch (error) {
    // A header this parser could not read but libvips could, declaring more than libvips takes.
    throw toImageError(
      error,
      bytes,
      format,
      raw ? { ...raw, maxPixels: Math.min(maxPixels, SHARP_PIXEL_LIMIT) } : undefined,
    );
  }
  if (metadata.format !== format) {
    // The magic bytes and libvips disagree; trust neither and refuse rather than decode something unexpected.
    throw new UnsupportedFormatError(String(metadata.format ?? 'unknown'));
  }
  const storedWidth = metadata.width ?? 0;
  const storedHeight = metadata.height ?? 0;
  if (storedWidth === 0 || storedHeight === 0) throw new ZeroDimensionError(storedWidth, storedHeight);

  const orientation = metadata.orientation;
  // Orientations 5-8 include a quarter turn, so the displayed image is the stored one transposed.
  const swap = orientation !== undefined && orientation >= 5 && orientation <= 8;
  const probe: ImageProbe = {
    format,
    width: swap ? storedHeight : storedWidth,
    height: swap ? storedWidth : storedHeight,
  };
  if (orientation !== undefined) probe.orientation = orientation;
  return { format, storedWidth, storedHeight, probe };
}

/** Format and displayed size from the header only; no pixels are decoded. Throws an {@link ImageError}. */
export async function probeImage(bytes: Uint8Array): Promise<ImageProbe> {
  return (await readHeader(bytes)).probe;
}

function cropSquare(rgb: Uint8Array, side: number, left: number, top: number, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * side + left) * 3;
    out.set(rgb.subarray(from, from + size * 3), y * size * 3);
  }
  return out;
}

/** A size x size RGB image mirrored left to right: the `hflip` view of pixels already decoded. */
export function mirrorRows(rgb: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < size; y++) {
    const row = y * size * 3;
    for (let x = 0; x < size; x++) {
      const from = row + x * 3;
      const to = row + (size - 1 - x) * 3;
      out[to] = rgb[from]!;
      out[to + 1] = rgb[from + 1]!;
      out[to + 2] = rgb[from + 2]!;
    }
  }
  return out;
}

/**
 * Decodes a JPEG, PNG or WebP into size x size RGB pixels: EXIF orientation applied, alpha flattened onto
 * white, colour converted to sRGB, resized with lanczos3. Every failure is an {@link ImageError}; huge or
 * zero-sized images are refused from the header before any pixel memory is allocated.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeImageOptions): Promise<DecodedImage> {
  const {
    size,
    maxPixels = DEFAULT_MAX_PIXELS,
    policy = 'center-crop',
    view = 'identity',
  } = optionsSchema.parse(options);
  const header = await readHeader(bytes, maxPixels);
  const { format, storedWidth, storedHeight } = header;
  if (storedWidth * storedHeight > maxPixels) {
    throw new TooManyPixelsError(storedWidth, storedHeight, maxPixels);
  }

  const cropView = view === 'crop-tl' || view === 'crop-br';
  const side = cropView ? Math.round(size * CROP_VIEW_SCALE) : size;
  let pixels: Uint8Array;
  try {
    const { data, info } = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: maxPixels })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(side, side, {
        fit: policy === 'squash' ? 'fill' : 'cover',
        position: 'centre',
        kernel: 'lanczos3',
      })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (
      info.width !== side ||
      info.height !== side ||
      info.channels !== 3 ||
      data.length !== side * side * 3
    ) {
      throw new Error(
        `decoder produced ${info.width}x${info.height}x${info.channels}, expected ${side}x${side}x3`,
      );
    }
    // A plain Uint8Array view: Buffer's slice() shares memory, which surprises callers that expect a copy.
    pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    throw toImageError(error, bytes, format, { width: storedWidth, height: storedHeight, maxPixels });
  }

  // Views are cut from the decoded square in JS so they cannot depend on sharp's internal ordering of
  // flip, rotate and extract relative to EXIF orientation.
  if (view === 'crop-tl') pixels = cropSquare(pixels, side, 0, 0, size);
  if (view === 'crop-br') pixels = cropSquare(pixels, side, side - size, side - size, size);
  if (view === 'hflip') pixels = mirrorRows(pixels, size);

  return {
    data: pixels,
    size,
    sourceWidth: header.probe.width,
    sourceHeight: header.probe.height,
    format,
  };
}
