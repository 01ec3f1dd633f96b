import { readFileSync, statSync } from 'node:fs';
import { DOWNSCALE_HINT } from '../../shared/backbone/index.js';
import { HeadstartError } from '../../shared/headstart-error.js';
import type { Target } from './cli-context.js';
import { ApiError, CliError } from './cli-errors.js';
import { fsReason } from './labelled-folder.js';
import { megabytes } from './upload-command.js';

export interface Prediction {
  label: string;
  score: number;
}

/** Why one file got no predictions; `status` is the API's HTTP status when the API refused it. */
export interface FileError {
  code: string;
  message: string;
  status?: number;
}

export type PredictResult =
  | {
      file: string;
      predictions: Prediction[];
      version: string;
      /** The version's outlier detector calls the image unlike its training photos; null without a detector. */
      unknown: boolean | null;
    }
  | { file: string; error: FileError };

const TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

/** A file the CLI cannot send at all; callers turn it into a FileError. */
export class FileProblem extends HeadstartError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'FileProblem';
  }
}

export async function call(target: Target, path: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${target.api}${path}`, {
      ...init,
      headers: {
        ...(init.headers as Record<string, string>),
        ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}),
      },
    });
  } catch (cause) {
    throw new CliError(
      `cannot reach the prediction API at ${target.api}${target.local ? ' (is `npm start` running?)' : ''}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!res.ok) {
    throw new ApiError({
      status: res.status,
      code: body.error?.code ?? 'http_error',
      detail: body.error?.message ?? res.statusText,
    });
  }
  return body;
}

/** The file's bytes, unless it is over the API's body limit (told by its size alone) or cannot be read. */
export function readForApi(file: string, maxBodyBytes: number): Uint8Array {
  try {
    const s = statSync(file);
    if (!s.isFile()) throw new FileProblem('unreadable_file', 'not a regular file');
    if (s.size > maxBodyBytes) throw tooLargeForApi(s.size, maxBodyBytes);
    return new Uint8Array(readFileSync(file));
  } catch (err) {
    if (err instanceof FileProblem) throw err;
    throw new FileProblem('unreadable_file', `cannot be read: ${fsReason(err)}`);
  }
}

/** Sent anyway, the API would answer 413 `payload_too_large`; the CLI says so from the size alone. */
export function tooLargeForApi(bytes: number, maxBodyBytes: number): FileProblem {
  return new FileProblem(
    'payload_too_large',
    `file is ${megabytes(bytes)}, over the API's ${megabytes(maxBodyBytes)} request limit (HEADSTART_MAX_BODY_BYTES); downscale it: ${DOWNSCALE_HINT}`,
  );
}

/** The FileError for a failure that concerns this file only; anything else (API down, bad key) is rethrown. */
export function fileError(err: unknown): FileError {
  if (err instanceof FileProblem) return { code: err.code, message: err.message };
  if (err instanceof ApiError && err.concernsOneImage)
    return { code: err.code, message: err.detail, status: err.status };
  throw err;
}

export async function predictOne(target: Target, project: string, file: string, topK: number) {
  const bytes = readForApi(file, target.env.HEADSTART_MAX_BODY_BYTES);
  const type = TYPES[file.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
  return (await call(target, `/v1/projects/${encodeURIComponent(project)}/predict?topK=${topK}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: bytes,
  })) as { predictions: Prediction[]; model: { version: string }; unknown?: boolean | null };
}

/**
 * Classifies each file on its own: a file that cannot be read, is over the body limit or that the API refuses
 * gets its error and the others still get their predictions. Only an API that cannot serve anyone (unreachable,
 * wrong key, no model) stops the run.
 */
export async function predictFiles(options: {
  target: Target;
  project: string;
  files: string[];
  topK: number;
}): Promise<PredictResult[]> {
  const out: PredictResult[] = [];
  for (const file of options.files) {
    try {
      const res = await predictOne(options.target, options.project, file, options.topK);
      out.push({
        file,
        predictions: res.predictions,
        version: res.model.version,
        unknown: res.unknown ?? null,
      });
    } catch (err) {
      out.push({ file, error: fileError(err) });
    }
  }
  return out;
}
