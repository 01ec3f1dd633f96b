import type { Context, MiddlewareHandler } from 'hono';
import { MAX_BATCH_IMAGES } from './api-schemas.js';
import type { EdgeEnv } from './edge-env.js';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './http-errors.js';

/** How to send one image; ends every refusal of a single-image request's body. */
export const RAW_HINT =
  'send the image as the body with Content-Type image/jpeg, image/png or image/webp, as multipart/form-data with a file field "image", or as JSON {"image": "<base64>"}';
/** How to send a batch; ends every refusal of a batch request's body. */
export const BATCH_HINT = `send multipart/form-data with the file field "image" repeated (at most ${MAX_BATCH_IMAGES}), or JSON {"images": ["<base64>", ...]}`;

export function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

export const isJson = (m: string) => /^application\/([\w.-]+\+)?json$/.test(m);
const isRawImage = (m: string) => m.startsWith('image/') || m === 'application/octet-stream';
export const isPlainText = (m: string) => m === 'text/plain';

function mb(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(bytes < 1_000_000 ? 2 : 1)} MB`;
}

export function tooLarge(size: string, limit: number, hint: string): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `the request body is ${size}, over the limit of ${limit} bytes (${mb(limit)})${hint ? `; ${hint}` : ''}`,
  );
}

/** The host delivered only part of the body (Lambda@Edge stops at 1 MB); a cut photo must not be classified. */
export function truncatedBody(limit: number, hint: string): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `the request body was cut short by the host at ${mb(limit)}, so it cannot be used${hint ? `; ${hint}` : ''}`,
  );
}

/**
 * Reads a request body into memory, refusing it with 413 as soon as it is known to be over `limit`: up front
 * from Content-Length, and while reading for bodies without one (chunked) or whose Content-Length lies.
 */
export async function readBodyWithin(request: Request, limit: number, hint: string): Promise<Uint8Array> {
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    throw tooLarge(`${declared} bytes`, limit, hint);
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(`over ${total} bytes`, limit, hint);
    }
    chunks.push(value);
  }
  const only = chunks[0];
  if (chunks.length === 1 && only && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength)
    return only;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export interface BodyReaderOptions {
  /** A batch route takes multipart or JSON only; a single-image route also takes the raw image or plain text. */
  batch: boolean;
  maxBodyBytes: number;
  /** Appended to 413 messages: what to do about the limit where this app runs. */
  hint: string;
  /** Whether the host cut the body short before the app saw it (see EdgeAppDeps). */
  isBodyTruncated?: ((c: Context) => boolean) | undefined;
}

/**
 * The middleware that reads a prediction's body, within the limit, into `c.get('body')`: refuses a media type
 * the route does not take (415, or 400 when there is no body at all) and a body over the limit (413).
 */
export function bodyReader(options: BodyReaderOptions): MiddlewareHandler<EdgeEnv> {
  const { batch, maxBodyBytes, hint } = options;
  return async (c, next) => {
    if (options.isBodyTruncated?.(c)) throw truncatedBody(maxBodyBytes, hint);
    const mediaType = mediaTypeOf(c.req.header('content-type'));
    const accepted =
      mediaType === 'multipart/form-data' ||
      isJson(mediaType) ||
      (!batch && (isRawImage(mediaType) || isPlainText(mediaType)));
    if (!accepted) {
      const empty = !c.req.raw.body || c.req.header('content-length') === '0';
      if (!mediaType && empty)
        throw new BadRequestError(
          'missing_image',
          `no image in the request: ${batch ? BATCH_HINT : RAW_HINT}`,
        );
      throw new UnsupportedMediaTypeError(
        `Content-Type '${mediaType || '(none)'}' is not accepted here: ${batch ? BATCH_HINT : RAW_HINT}`,
      );
    }
    const body = await readBodyWithin(c.req.raw, maxBodyBytes, hint);
    // Hono's validators read the body again from the request, so it is rebuilt over the bytes already read (as
    // Hono's own bodyLimit middleware does): the limit above then bounds them too.
    c.req.raw = new Request(c.req.raw, { body });
    c.set('body', body);
    await next();
  };
}
