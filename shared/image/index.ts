export {
  CROP_VIEW_SCALE,
  DEFAULT_MAX_PIXELS,
  type DecodedImage,
  type DecodeImageOptions,
  decodeImage,
  type ImageFormat,
  type ImageProbe,
  type ImageView,
  mirrorRows,
  probeImage,
  type ResizePolicy,
} from './decode-image.js';
export {
  CorruptImageError,
  EmptyImageError,
  ImageError,
  TooManyPixelsError,
  UnsupportedFormatError,
  ZeroDimensionError,
} from './image-errors.js';
export { encodeThumbnail, type Thumbnail } from './thumbnail.js';
