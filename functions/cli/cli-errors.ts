import { HeadstartError } from '../../shared/headstart-error.js';

/** A problem the user can fix; printed as one line, exit code 2 (usage) or 1 (anything else). */
export class CliError extends HeadstartError {
  declare readonly exitCode: number;
  constructor(
    message: string,
    options?: { cause?: unknown; exitCode?: number; code?: string; status?: number },
  ) {
    super(options?.code ?? 'command_failed', message, {
      cause: options?.cause,
      exitCode: options?.exitCode ?? 1,
      status: options?.status,
    });
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2, code: 'invalid_usage' });
    this.name = 'UsageError';
  }
}

/** The prediction API answered with an error; `status` tells whether it concerns one image or every request. */
export class ApiError extends CliError {
  declare readonly status: number;
  readonly detail: string;
  constructor(options: { status: number; code: string; detail: string }) {
    super(`${options.status} ${options.code}: ${options.detail}`, {
      code: options.code,
      status: options.status,
    });
    this.name = 'ApiError';
    this.detail = options.detail;
  }

  /** 401, 403 and 404 are about the key or the project: every other image would get the same. */
  get concernsOneImage(): boolean {
    return ![401, 403, 404].includes(this.status);
  }
}
