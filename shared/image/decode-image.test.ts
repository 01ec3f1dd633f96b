import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { pngDeclaring } from '../../test/support/synthetic-images.js';
import {
  CorruptImageError,
  DEFAULT_MAX_PIXELS,
  decodeImage,
  EmptyImageError,
  ImageError,
  probeImage,
  TooManyPixelsError,
  UnsupportedFormatError,
  ZeroDimensionError,
} from './index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');
const malformed = (name: string): Buffer => readFileSync(join(fixtures, 'malformed', name));

function firstPhoto(split: string, label: string): Buffer {
  const dir = join(fixtures, 'clothing-mini', split, label);
  const name = readdirSync(dir)
    .filter((n) => n.endsWith('.jpg'))
    .sort()[0];
  if (!name) throw new Error(`no fixture in ${dir}`);
  return readFileSync(join(dir, name));
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Deterministic noise, so every pixel matters when comparing crops. */
async function noisePng(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

async function rejection(promise: Promise<unknown>): Promise<ImageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageError);
  return error as ImageError;
}

describe('decodeImage refusals', () => {
  it.each([
    ['empty.jpg', 'empty_image', EmptyImageError],
    ['truncated.jpg', 'corrupt_image', CorruptImageError],
    ['corrupt-header.png', 'corrupt_image', CorruptImageError],
    ['not-an-image.jpg', 'unsupported_format', UnsupportedFormatError],
    ['image.gif', 'unsupported_format', UnsupportedFormatError],
    ['zero-width.png', 'zero_dimension', ZeroDimensionError],
    ['huge-dims.png', 'too_many_pixels', TooManyPixelsError],
  ])('refuses %s with code %s', async (file, code, type) => {
    const error = await rejection(decodeImage(malformed(file), { size: 64 }));
    expect(error).toBeInstanceOf(type);
    expect(error.code).toBe(code);
  });

  it('says a cut-off JPEG is truncated rather than returning grey pixels', async () => {
    const error = await rejection(decodeImage(malformed('truncated.jpg'), { size: 64 }));
    expect(error).toBeInstanceOf(CorruptImageError);
    expect((error as CorruptImageError).truncated).toBe(true);
    expect(error.message).toMatch(/truncated/);
  });

  it('does not call a PNG with a garbage header truncated', async () => {
    const error = await rejection(decodeImage(malformed('corrupt-header.png'), { size: 64 }));
    expect((error as CorruptImageError).truncated).toBe(false);
    expect(error.message).not.toMatch(/truncated/);
  });

  it('says a truncated PNG and WebP are truncated too', async () => {
    const photo = firstPhoto('eval', 'hat');
    for (const bytes of [await sharp(photo).png().toBuffer(), await sharp(photo).webp().toBuffer()]) {
      const error = await rejection(
        decodeImage(bytes.subarray(0, Math.floor(bytes.length * 0.6)), { size: 32 }),
      );
      expect(error).toBeInstanceOf(CorruptImageError);
      expect((error as CorruptImageError).truncated).toBe(true);
    }
  });

  it('names the detected format of an unsupported image', async () => {
    const gif = await rejection(decodeImage(malformed('image.gif'), { size: 64 }));
    expect((gif as UnsupportedFormatError).detected).toBe('gif');
    expect(gif.message).toMatch(/gif/);
    const text = await rejection(decodeImage(malformed('not-an-image.jpg'), { size: 64 }));
    expect((text as UnsupportedFormatError).detected).toBe('unknown');
    const tiff = await sharp(firstPhoto('eval', 'hat')).resize(16).tiff().toBuffer();
    expect(((await rejection(decodeImage(tiff, { size: 16 }))) as UnsupportedFormatError).detected).toBe(
      'tiff',
    );
  });

  it('refuses a 50 MP header from the header alone, giving the size and the limit', async () => {
    const error = await rejection(decodeImage(malformed('huge-dims.png'), { size: 64 }));
    expect(error.message).toContain('10000x5000');
    expect(error.message).toContain(String(DEFAULT_MAX_PIXELS));
    // No cause: our header check refused it, not sharp partway through allocating a decode.
    expect(error.cause).toBeUndefined();
  });

  it('applies a configurable pixel limit, inclusive', async () => {
    const photo = firstPhoto('train', 'hat');
    const { width, height } = await probeImage(photo);
    const pixels = width * height;
    const error = await rejection(decodeImage(photo, { size: 32, maxPixels: pixels - 1 }));
    expect(error).toBeInstanceOf(TooManyPixelsError);
    expect(error.message).toContain(`${width}x${height}`);
    await expect(decodeImage(photo, { size: 32, maxPixels: pixels })).resolves.toMatchObject({ size: 32 });
  });

  it('says too_many_pixels, not corrupt_image, for a PNG declaring 100000x100000 that sharp will not open', async () => {
    const error = await rejection(decodeImage(pngDeclaring(100_000, 100_000), { size: 64 }));
    expect(error).toBeInstanceOf(TooManyPixelsError);
    expect(error.message).toContain('100000x100000');
    expect((await rejection(probeImage(pngDeclaring(100_000, 100_000)))).code).toBe('too_many_pixels');
  });

  it('says too_many_pixels for JPEG and WebP headers declaring more than sharp opens', async () => {
    const jpeg = Buffer.from(firstPhoto('train', 'hat'));
    // Rewrite the frame header (SOF0/SOF2) to claim 60000x60000.
    let at = 2;
    while (jpeg[at] === 0xff && jpeg[at + 1] !== 0xc0 && jpeg[at + 1] !== 0xc2)
      at += 2 + jpeg.readUInt16BE(at + 2);
    jpeg.writeUInt16BE(60_000, at + 5);
    jpeg.writeUInt16BE(60_000, at + 7);
    const j = await rejection(decodeImage(jpeg, { size: 64 }));
    expect([j.code, j.message]).toEqual(['too_many_pixels', expect.stringContaining('60000x60000')]);

    // An extended WebP (VP8X) canvas of 20000x20000 in front of a real image's VP8 chunk.
    const small = malformed('small.webp');
    const vp8x = Buffer.alloc(18);
    vp8x.write('VP8X', 0, 'latin1');
    vp8x.writeUInt32LE(10, 4);
    vp8x.writeUIntLE(20_000 - 1, 12, 3);
    vp8x.writeUIntLE(20_000 - 1, 15, 3);
    const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), vp8x, small.subarray(12)]);
    const riff = Buffer.alloc(8);
    riff.write('RIFF', 0, 'latin1');
    riff.writeUInt32LE(body.length, 4);
    const w = await rejection(decodeImage(Buffer.concat([riff, body]), { size: 64 }));
    expect([w.code, w.message]).toEqual(['too_many_pixels', expect.stringContaining('20000x20000')]);
  });

  it('rejects nonsense options as a programming error, not an image error', async () => {
    const photo = firstPhoto('train', 'hat');
    const error = await decodeImage(photo, { size: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ImageError);
  });
});

describe('probeImage', () => {
  it('reports format and displayed size without decoding', async () => {
    await expect(probeImage(malformed('small.webp'))).resolves.toEqual({
      format: 'webp',
      width: 96,
      height: 128,
    });
    // Header only: the pixel limit is decodeImage's business, and this file has no real pixel data.
    await expect(probeImage(malformed('huge-dims.png'))).resolves.toEqual({
      format: 'png',
      width: 10000,
      height: 5000,
    });
  });

  it('swaps width and height for EXIF orientation 6', async () => {
    await expect(probeImage(malformed('rotated-exif6.jpg'))).resolves.toEqual({
      format: 'jpeg',
      width: 120,
      height: 160,
      orientation: 6,
    });
  });

  it('raises the same typed errors for header-level problems', async () => {
    expect((await rejection(probeImage(malformed('empty.jpg')))).code).toBe('empty_image');
    expect((await rejection(probeImage(malformed('image.gif')))).code).toBe('unsupported_format');
    expect((await rejection(probeImage(malformed('zero-width.png')))).code).toBe('zero_dimension');
    expect((await rejection(probeImage(malformed('corrupt-header.png')))).code).toBe('corrupt_image');
  });
});

describe('decodeImage pixels', () => {
  it.each([
    ['jpeg', () => firstPhoto('train', 'shoes')],
    ['png', () => malformed('transparent.png')],
    ['webp', () => malformed('small.webp')],
  ])('decodes a %s to size*size*3 RGB bytes', async (format, load) => {
    const decoded = await decodeImage(load(), { size: 48 });
    expect(decoded.format).toBe(format);
    expect(decoded.size).toBe(48);
    expect(decoded.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(decoded.data)).toBe(false);
    expect(decoded.data.length).toBe(48 * 48 * 3);
    expect(new Set(decoded.data).size).toBeGreaterThan(32);
  });

  it('flattens transparency onto white', async () => {
    // Left half of transparent.png is alpha 0 over black.
    const { data, size } = await decodeImage(malformed('transparent.png'), { size: 64, policy: 'squash' });
    const at = (x: number, y: number, c: number) => data[(y * size + x) * 3 + c]!;
    for (const y of [0, 20, 63]) for (let c = 0; c < 3; c++) expect(at(5, y, c)).toBe(255);
    const right = [40, 50, 60].map((x) => at(x, 32, 0) + at(x, 32, 1) + at(x, 32, 2));
    expect(Math.min(...right)).toBeLessThan(255 * 3);
  });

  it('turns greyscale, CMYK and 16-bit inputs into 8-bit sRGB with 3 channels', async () => {
    const photo = firstPhoto('eval', 'pants');
    const grey = await sharp(photo).greyscale().toColourspace('b-w').jpeg().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await decodeImage(grey, { size: 32 });
    expect(g.data.length).toBe(32 * 32 * 3);
    for (let i = 0; i < g.data.length; i += 3) expect(g.data[i]).toBe(g.data[i + 1]);

    const cmyk = await sharp(photo).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const reference = await decodeImage(photo, { size: 32 });
    const fromCmyk = await decodeImage(cmyk, { size: 32 });
    expect(meanAbsDiff(fromCmyk.data, reference.data)).toBeLessThan(12);

    const deep = await sharp(photo).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(deep).metadata()).depth).toBe('ushort');
    const fromDeep = await decodeImage(deep, { size: 32 });
    expect(meanAbsDiff(fromDeep.data, reference.data)).toBeLessThan(4);
  });

  it('applies EXIF orientation 6 so a landscape-stored photo comes out portrait', async () => {
    const bytes = malformed('rotated-exif6.jpg');
    const decoded = await decodeImage(bytes, { size: 64 });
    expect([decoded.sourceWidth, decoded.sourceHeight]).toEqual([120, 160]);

    // sharp leaves orientation alone unless asked, so this is the pixels as stored: landscape.
    const stored = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([stored.info.width, stored.info.height]).toEqual([160, 120]);
    const raw = {
      raw: { width: stored.info.width, height: stored.info.height, channels: stored.info.channels },
    };
    const rotatedByHand = await sharp(stored.data, raw).rotate(90).png().toBuffer();
    const unrotated = await sharp(stored.data, raw).png().toBuffer();

    const matching = await decodeImage(rotatedByHand, { size: 64 });
    const wrong = await decodeImage(unrotated, { size: 64 });
    expect(meanAbsDiff(decoded.data, matching.data)).toBeLessThan(2);
    expect(meanAbsDiff(decoded.data, wrong.data)).toBeGreaterThan(20);
  });

  it('is deterministic: the same bytes give identical pixels', async () => {
    const photo = firstPhoto('eval', 't-shirt');
    const a = await decodeImage(photo, { size: 96 });
    const b = await decodeImage(Buffer.from(photo), { size: 96 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
  });

  it('centre-crops a 2:1 image to exactly its middle square', async () => {
    const wide = await noisePng(128, 64);
    const middle = await sharp(wide).extract({ left: 32, top: 0, width: 64, height: 64 }).png().toBuffer();
    const cropped = await decodeImage(wide, { size: 64 });
    const expected = await decodeImage(middle, { size: 64 });
    expect(Buffer.from(cropped.data).equals(Buffer.from(expected.data))).toBe(true);
    expect([cropped.sourceWidth, cropped.sourceHeight]).toEqual([128, 64]);

    const squashed = await decodeImage(wide, { size: 64, policy: 'squash' });
    expect(meanAbsDiff(squashed.data, cropped.data)).toBeGreaterThan(20);
  });

  it('keeps aspect when downscaling: the crop matches the middle square scaled down', async () => {
    const photo = await sharp(firstPhoto('train', 'pants'))
      .resize(240, 120, { fit: 'fill' })
      .png()
      .toBuffer();
    const middle = await sharp(photo).extract({ left: 60, top: 0, width: 120, height: 120 }).png().toBuffer();
    const cropped = await decodeImage(photo, { size: 60 });
    const expected = await decodeImage(middle, { size: 60 });
    expect(meanAbsDiff(cropped.data, expected.data)).toBeLessThan(3);
  });
});

describe('decodeImage views', () => {
  const photo = () => firstPhoto('train', 'shoes');

  it('hflip mirrors the identity view exactly', async () => {
    const size = 40;
    const identity = await decodeImage(photo(), { size });
    const flipped = await decodeImage(photo(), { size, view: 'hflip' });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        for (let c = 0; c < 3; c++) {
          expect(flipped.data[(y * size + x) * 3 + c]).toBe(
            identity.data[(y * size + (size - 1 - x)) * 3 + c],
          );
        }
      }
    }
  });

  it('crop views are the corners of the centre crop scaled to 1.15x', async () => {
    const size = 40;
    const side = Math.round(size * 1.15);
    const larger = await decodeImage(photo(), { size: side });
    const corner = (left: number, top: number) => {
      const out: number[] = [];
      for (let y = 0; y < size; y++) {
        const from = ((top + y) * side + left) * 3;
        out.push(...larger.data.subarray(from, from + size * 3));
      }
      return Uint8Array.from(out);
    };
    const tl = await decodeImage(photo(), { size, view: 'crop-tl' });
    const br = await decodeImage(photo(), { size, view: 'crop-br' });
    expect(tl.data.length).toBe(size * size * 3);
    expect(Buffer.from(tl.data).equals(Buffer.from(corner(0, 0)))).toBe(true);
    expect(Buffer.from(br.data).equals(Buffer.from(corner(side - size, side - size)))).toBe(true);
    expect(meanAbsDiff(tl.data, br.data)).toBeGreaterThan(1);
  });
});

describe('image errors', () => {
  it('carry a stable code, their own name and the cause', () => {
    const cause = new Error('libvips said no');
    const error = new CorruptImageError('bad scan', { cause, truncated: true });
    expect(error).toBeInstanceOf(ImageError);
    expect(error.name).toBe('CorruptImageError');
    expect(error.code).toBe('corrupt_image');
    expect(error.cause).toBe(cause);
    expect(new ZeroDimensionError(0, 4, { cause }).cause).toBe(cause);
    expect(new EmptyImageError()).not.toHaveProperty('cause');
  });
});
