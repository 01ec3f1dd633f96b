import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { HeadstartError } from '../headstart-error.js';
import { CorruptImageError } from '../image/image-errors.js';
import { NoModelError } from '../models/model-errors.js';
import { CorruptObjectError, StoreUnavailableError } from '../store/store-errors.js';
import { ServiceUnavailableError, toHttpError, UnauthorizedError } from './http-errors.js';

const wire = (err: unknown) => {
  const http = toHttpError(err);
  return { status: http.status, code: http.code, message: http.message, headers: http.headers };
};

describe('toHttpError', () => {
  it('answers an error whose area gave it a status with that status, its code and its message', () => {
    expect(wire(new CorruptImageError('bad huffman table', { truncated: false }))).toEqual({
      status: 422,
      code: 'corrupt_image',
      message: 'image is corrupt: bad huffman table',
      headers: {},
    });
    expect(wire(new NoModelError("project 'shop' has no trained model yet"))).toMatchObject({
      status: 404,
      code: 'no_model',
    });
    expect(wire(new HeadstartError('some_future_code', 'told to the client', { status: 409 }))).toMatchObject(
      {
        status: 409,
        code: 'some_future_code',
        message: 'told to the client',
      },
    );
  });

  it('keeps the headers of an HTTP refusal', () => {
    expect(wire(new UnauthorizedError('missing_api_key', 'send a key')).headers).toEqual({
      'www-authenticate': 'Bearer',
    });
    const busy = new ServiceUnavailableError('overloaded', 'busy', { retryAfterSeconds: 1 });
    expect(toHttpError(busy)).toBe(busy);
  });

  it('answers anything without a status as a 500 that says nothing about it, keeping it as the cause', () => {
    for (const err of [
      new CorruptObjectError('features/shop/secret-key.f32 is truncated'),
      new HeadstartError('odd', 'secret', { status: 200 }),
      new TypeError('secret internal detail'),
      'a thrown secret string',
    ]) {
      const http = toHttpError(err);
      expect(wire(err)).toEqual({
        status: 500,
        code: 'internal_error',
        message: 'internal error',
        headers: {},
      });
      expect(http.cause).toBe(err);
    }
  });

  it("says the store is unreachable in the API's own words, with a Retry-After", () => {
    const err = new StoreUnavailableError(
      'GET models/shop/current.json: S3 unavailable: connect 10.1.2.3:443',
    );
    expect(wire(err)).toEqual({
      status: 503,
      code: 'store_unavailable',
      message: 'the store is unreachable; try again shortly',
      headers: { 'retry-after': '2' },
    });
  });

  it("answers Hono's own refusal of a malformed body as 400 malformed_body", () => {
    expect(wire(new HTTPException(400, { message: 'Malformed JSON in request body' }))).toMatchObject({
      status: 400,
      code: 'malformed_body',
      message: 'Malformed JSON in request body',
    });
  });
});
