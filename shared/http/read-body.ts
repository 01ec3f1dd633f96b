import { PayloadTooLargeError } from './http-errors.js';

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
