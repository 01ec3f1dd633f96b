import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Every refusal of the edge API. The app renders them all in one place as `{"error": {"code", "message"}}` with
 * `status`; `code` is stable and machine-readable, `message` says what to do about it. Never a stack trace.
 */
export class HttpError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
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
