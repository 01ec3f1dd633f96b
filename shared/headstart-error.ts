/**
 * The root of every error Headstart raises on purpose; each area (store, image, training, HTTP, CLI...) derives
 * its own base from it. Callers branch on `code` (stable, snake_case, machine-readable) and show `message` to
 * people. Renderers read only `code`, `status`, `exitCode` and `message`, never the class: the API answers with
 * `status` (500 and nothing of the error when unset), a command ends with `exitCode`. Runtime-neutral: no Node,
 * no Hono.
 */
export interface HeadstartErrorOptions {
  cause?: unknown;
  /**
   * The HTTP status (400-599) an API answers this error with, set by an area that knows what the error means to a
   * client; its message is then written for that client. Unset means a server-side failure.
   */
  status?: number;
  /**
   * The exit code a command that stops on this error ends with. Set by errors written for the person at the
   * command line (2: their arguments, environment or names are wrong); their message is then the whole line.
   * Unset means 1, and the line starts with the code.
   */
  exitCode?: number;
}

export class HeadstartError extends Error {
  readonly code: string;
  // `declare`: an unset status or exit code is no own property, so it does not show up in logs as `undefined`.
  declare readonly status?: number;
  declare readonly exitCode?: number;

  constructor(code: string, message: string, options: HeadstartErrorOptions = {}) {
    // Passing `{ cause: undefined }` would still create an own `cause` property, which shows up in logs.
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HeadstartError';
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
    if (options.exitCode !== undefined) this.exitCode = options.exitCode;
  }
}

/**
 * An area's base class (`class StoreError extends areaError('StoreError') {}`): a HeadstartError under that name
 * that takes any code, with the area's defaults (an image error is a 422 to an API client, a dataset error is
 * the user's to fix at the command line) unless the caller says otherwise.
 */
export function areaError(name: string, defaults: Omit<HeadstartErrorOptions, 'cause'> = {}) {
  return class extends HeadstartError {
    constructor(code: string, message: string, options?: HeadstartErrorOptions) {
      super(code, message, { ...defaults, ...options });
      this.name = name;
    }
  };
}

type AreaErrorClass = new (code: string, message: string, options?: HeadstartErrorOptions) => HeadstartError;

export interface ErrorKind extends Omit<HeadstartErrorOptions, 'cause'> {
  /** The class name, which shows in logs and stack traces. */
  name: string;
  code: string;
}

/**
 * One kind of error of an area, with a fixed code (`class NoModelError extends errorKind(ModelError, { name:
 * 'NoModelError', code: 'no_model', status: 404 }) {}`): callers pass only a message and an optional cause.
 */
export function errorKind<B extends AreaErrorClass>(base: B, kind: ErrorKind) {
  const { name, code, ...defaults } = kind;
  const Kind = class extends (base as AreaErrorClass) {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, { ...defaults, ...options });
      this.name = name;
    }
  };
  return Kind as unknown as new (
    message: string,
    options?: { cause?: unknown },
  ) => InstanceType<B>;
}

/** What to tell people about anything thrown: an error's message, or the thrown value itself. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  const message = (err as { message?: unknown } | null | undefined)?.message;
  if (typeof message === 'string') return message;
  try {
    return String(err);
  } catch {
    // An object without a prototype has no toString.
    return Object.prototype.toString.call(err);
  }
}

/**
 * The stable code of anything thrown: a Headstart error's, or the string `code` Node's and SDKs' errors carry
 * (`ENOENT`, `ECONNREFUSED`); undefined when there is none.
 */
export function codeOf(err: unknown): string | undefined {
  if (err instanceof HeadstartError) return err.code;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
