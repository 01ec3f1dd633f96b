/** A problem the user can fix; printed as one line, exit code 2 (usage) or 1 (anything else). */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = options?.exitCode ?? 1;
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** The prediction API answered with an error; `status` tells whether it concerns one image or every request. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  constructor(options: { status: number; code: string; detail: string }) {
    super(`${options.status} ${options.code}: ${options.detail}`);
    this.name = 'ApiError';
    this.status = options.status;
    this.code = options.code;
    this.detail = options.detail;
  }

  /** 401, 403 and 404 are about the key or the project: every other image would get the same. */
  get concernsOneImage(): boolean {
    return ![401, 403, 404].includes(this.status);
  }
}
