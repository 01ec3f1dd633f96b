import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { checkProject } from '../dataset/upload-key.js';
import type { SnapshotReader } from '../pipeline/project-status.js';
import type { RetrainTrigger } from '../pipeline/retrain-requests.js';
import type { ObjectStore } from '../store/index.js';
import type { ThumbnailCache } from './thumbnails.js';
import { UiError } from './ui-errors.js';

/** Classifies one photo as the API would; the entry point wires it (the UI never imports the HTTP app). */
export type UiPredictor = (input: {
  project: string;
  body: Uint8Array;
  contentType: string;
}) => Promise<Response>;

export interface UiDeps {
  store: ObjectStore;
  /** Nudges what runs trainings (a deployed stack's queue); locally the stack notices the request by itself. */
  trigger?: RetrainTrigger;
  /** The Try it page's predictions; without it the page says predictions are unavailable. */
  predict?: UiPredictor;
  /** Uploads over this are refused. Default 20 MB, as the API and the CLI. */
  maxUploadBytes?: number;
  /** Thumbnails kept in memory. Default 2,000 (about 10 MB). */
  thumbnailCacheSize?: number;
  /** The CSRF token; random per process unless given (tests). */
  csrfToken?: string;
}

/** A message for the next page a POST redirects to; kept server-side so a link cannot make the page say things. */
export interface Notices {
  put(text: string, kind?: 'ok' | 'error'): string;
  take(id: string | undefined): { text: string; kind: 'ok' | 'error' } | undefined;
}

export function createNotices(max = 200): Notices {
  const notes = new Map<string, { text: string; kind: 'ok' | 'error' }>();
  return {
    put(text, kind = 'ok') {
      const id = randomBytes(9).toString('base64url');
      notes.set(id, { text, kind });
      if (notes.size > max) notes.delete(notes.keys().next().value!);
      return id;
    },
    take(id) {
      if (!id) return undefined;
      const n = notes.get(id);
      notes.delete(id);
      return n;
    },
  };
}

export interface UiContext {
  deps: UiDeps;
  store: ObjectStore;
  token: string;
  notices: Notices;
  thumbs: ThumbnailCache;
  /** The dataset index's photos of a project, re-read only when it changed. */
  snapshot: SnapshotReader;
  maxUploadBytes: number;
}

/** The project named in the path, checked: a bad name is a 400 naming the rule, before anything is read. */
export function projectParam(c: Context): string {
  const raw = c.req.param('project') ?? '';
  try {
    return checkProject(raw);
  } catch (err) {
    throw new UiError('invalid_project', (err as Error).message, { status: 400 });
  }
}

/** A string form field (the body is parsed once and cached by Hono). */
export async function field(c: Context, name: string): Promise<string | undefined> {
  const body = await c.req.parseBody({ all: true });
  const v = body[name];
  const one = Array.isArray(v) ? v[0] : v;
  return typeof one === 'string' ? one : undefined;
}

export async function fields(c: Context, name: string): Promise<string[]> {
  const body = await c.req.parseBody({ all: true });
  const v = body[name];
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter(
    (x): x is string => typeof x === 'string',
  );
}

const wantsJson = (c: Context) => (c.req.header('accept') ?? '').includes('application/json');

/**
 * The answer to a POST: JSON for the pages' scripts, otherwise a 303 back to the page (`back`, always built
 * here, never taken from the request) with the message as a notice.
 */
export function done(
  ctx: UiContext,
  c: Context,
  options: { back: string; message: string; value?: unknown },
): Response {
  if (wantsJson(c))
    return c.json({ ok: true, message: options.message, ...(options.value ? { value: options.value } : {}) });
  const id = ctx.notices.put(options.message);
  return c.redirect(`${options.back}${options.back.includes('?') ? '&' : '?'}notice=${id}`, 303);
}

export const projectPath = (project: string, page = '') => `/ui/p/${project}/${page}`;
