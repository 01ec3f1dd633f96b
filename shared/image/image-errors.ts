import { areaError } from '../headstart-error.js';

/**
 * Every way an input image can be refused. Callers set an image aside by `code` (stable, machine-readable)
 * and show `message` to people, so messages name the concrete problem. An API answers them all with 422: the
 * request was well formed, the image in it cannot be used.
 */
export class ImageError extends areaError('ImageError', { status: 422 }) {}

export class EmptyImageError extends ImageError {
  constructor(options?: { cause?: unknown }) {
    super('empty_image', 'image is empty (0 bytes)', options);
    this.name = 'EmptyImageError';
  }
}

export class UnsupportedFormatError extends ImageError {
  /** What the bytes look like, e.g. 'gif' or 'heic'; 'unknown' when nothing was recognised. */
  readonly detected: string;

  constructor(detected: string, options?: { cause?: unknown }) {
    const what =
      detected === 'unknown' ? 'not a recognised image format' : `${detected} images are not supported`;
    super('unsupported_format', `${what}; use JPEG, PNG or WebP`, options);
    this.name = 'UnsupportedFormatError';
    this.detected = detected;
  }
}

export class CorruptImageError extends ImageError {
  /** True when the data ends early (an interrupted upload or copy) rather than being damaged inside. */
  readonly truncated: boolean;

  constructor(detail: string, options?: { cause?: unknown; truncated?: boolean }) {
    const truncated = options?.truncated ?? false;
    super(
      'corrupt_image',
      truncated ? `image is truncated (data ends early): ${detail}` : `image is corrupt: ${detail}`,
      options,
    );
    this.name = 'CorruptImageError';
    this.truncated = truncated;
  }
}

export class ZeroDimensionError extends ImageError {
  constructor(width: number, height: number, options?: { cause?: unknown }) {
    super('zero_dimension', `image has a zero dimension (${width}x${height})`, options);
    this.name = 'ZeroDimensionError';
  }
}

export class TooManyPixelsError extends ImageError {
  readonly width: number;
  readonly height: number;
  readonly maxPixels: number;

  constructor(width: number, height: number, maxPixels: number, options?: { cause?: unknown }) {
    super(
      'too_many_pixels',
      `image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} pixels`,
      options,
    );
    this.name = 'TooManyPixelsError';
    this.width = width;
    this.height = height;
    this.maxPixels = maxPixels;
  }
}
