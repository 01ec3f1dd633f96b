import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { codeOf, HeadstartError } from '../headstart-error.js';

/**
 * Every refusal of the edge API. The app renders them all in one place as `{"error": {"code", "message"}}` with
 * `status`; `code` is stable and machine-readable, `message` says what to do about it. Never a stack trace.
 */
export class HttpError extends HeadstartError {
  declare readonly status: ContentfulStatusCode;
  /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(code, message, { cause: options?.cause, status });
    this.name = 'HttpError';
    this.headers = options?.headers ?? {};
  }
}

/** 400: the body, path or query is missing or malformed. */
export class BadRequestError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(400, code, message, options);
    this.name = 'BadRequestError';
  }
}

/** 401: no usable credentials were presented. */
export class UnauthorizedError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(401, code, message, { ...options, headers: { 'www-authenticate': 'Bearer' } });
    this.name = 'UnauthorizedError';
  }
}

/** 403: credentials were presented but do not grant access to this project. */
export class ForbiddenError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(403, code, message, options);
    this.name = 'ForbiddenError';
  }
}

/** 404: no such route, project, or trained model. */
export class NotFoundError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(404, code, message, options);
    this.name = 'NotFoundError';
  }
}

/** 413: the body is over the configured limit (or CloudFront cut it at Lambda@Edge's 1 MB). */
export class PayloadTooLargeError extends HttpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(413, 'payload_too_large', message, options);
    this.name = 'PayloadTooLargeError';
  }
}

/** 415: a Content-Type the predict routes do not take. */
export class UnsupportedMediaTypeError extends HttpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(415, 'unsupported_media_type', message, options);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** 415: an image sent to a text project, or a text to an image project; the message names the project's kind. */
export class ModalityMismatchHttpError extends HttpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(415, 'modality_mismatch', message, options);
    this.name = 'ModalityMismatchHttpError';
  }
}

/** 422: a text that cannot be classified (empty, too long, not UTF-8) or too many texts; `code` says which. */
export class UnprocessableTextError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(422, code, message, options);
    this.name = 'UnprocessableTextError';
  }
}

/** 422: the image cannot be used (undecodable, unsupported format, too many pixels); `code` is the image's. */
export class UnprocessableImageError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(422, code, message, options);
    this.name = 'UnprocessableImageError';
  }
}

/** 503: the model or the store cannot be used right now, or the instance is saturated. Retrying may help. */
export class ServiceUnavailableError extends HttpError {
  constructor(code: string, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(503, code, message, {
      ...options,
      headers: options?.retryAfterSeconds ? { 'retry-after': String(options.retryAfterSeconds) } : {},
    });
    this.name = 'ServiceUnavailableError';
  }
}

const isErrorStatus = (status: number | undefined): status is ContentfulStatusCode =>
  status !== undefined && Number.isInteger(status) && status >= 400 && status <= 599;

/**
 * The refusal anything thrown is answered with, from its code and status alone. An error whose area gave it a
 * status is answered with that status, its code and its message; anything else is a 500 whose body says nothing
 * about it (the log does).
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof HeadstartError && isErrorStatus(err.status)) {
    return new HttpError(err.status, err.code, err.message, { cause: err });
  }
  // Hono's own validators: malformed JSON or multipart bodies.
  if (err instanceof HTTPException && err.status < 500) {
    return new BadRequestError('malformed_body', err.message, { cause: err });
  }
  // The store's own message names keys and endpoints: the API says it in its own words.
  if (codeOf(err) === 'store_unavailable') {
    return new ServiceUnavailableError('store_unavailable', 'the store is unreachable; try again shortly', {
      cause: err,
      retryAfterSeconds: 2,
    });
  }
  return new HttpError(500, 'internal_error', 'internal error', { cause: err });
}
