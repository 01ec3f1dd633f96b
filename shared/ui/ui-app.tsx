import { readFileSync } from 'node:fs';
import { type Context, Hono } from 'hono';
import { decodeTextUpload, modalityOfKey } from '../dataset/text-upload.js';
import { parseUploadKey } from '../dataset/upload-key.js';
import { codeOf, HeadstartError, messageOf } from '../headstart-error.js';
import { ImageError } from '../image/index.js';
import { layout } from '../layout/index.js';
import { reviewIdSchema } from '../review/index.js';
import { registerDataPage } from './data-page.js';
import { registerKeysPage } from './keys-page.js';
import { Page } from './layout.js';
import { registerMistakesPage } from './mistakes-page.js';
import { registerModelPage } from './model-page.js';
import { registerProjectsPage } from './projects-page.js';
import { registerReviewPages } from './review-pages.js';
import { createSnapshotCache } from './snapshot-cache.js';
import { createThumbnailCache } from './thumbnails.js';
import { registerTryPage } from './try-page.js';
import { createNotices, projectParam, type UiContext, type UiDeps } from './ui-context.js';
import { UiError } from './ui-errors.js';
import { createUiGuard, SECURITY_HEADERS } from './ui-guard.js';

/** The client script and stylesheet, read once: plain files, no build step (see the README's Dashboard). */
const ASSETS: Record<string, { type: string; body: string }> = {
  'dashboard.js': { type: 'text/javascript; charset=utf-8', body: readAsset('dashboard.js') },
  'dashboard.css': { type: 'text/css; charset=utf-8', body: readAsset('dashboard.css') },
};

function readAsset(name: string): string {
  return readFileSync(new URL(`./client/${name}`, import.meta.url), 'utf8');
}

async function renderError(err: unknown, c: Context, token: string): Promise<Response> {
  // An error written for a person to fix (it names its exit code) but with no HTTP status is the request's fault.
  const status =
    err instanceof HeadstartError ? (err.status ?? (err.exitCode !== undefined ? 400 : 500)) : 500;
  const code = codeOf(err) ?? 'internal_error';
  const message =
    status === 500 && !(err instanceof HeadstartError) ? `internal error: ${messageOf(err)}` : messageOf(err);
  const res = await ((c.req.header('accept') ?? '').includes('application/json')
    ? c.json({ error: { code, message } }, status as 400)
    : c.html(
        <Page title="Something went wrong" token={token}>
          <p class="notice error" role="alert">
            <code>{code}</code>: {message}
          </p>
          <p>
            <a href="/ui/">Back to the projects</a>
          </p>
        </Page>,
        status as 400,
      ));
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.headers.set(name, value);
  return res;
}

/** The `key` query parameter: an upload of `project`, or a 400 naming why not. */
function uploadKeyParam(c: Context, project: string): string {
  const given = c.req.query('key') ?? '';
  let parsed: ReturnType<typeof parseUploadKey>;
  try {
    parsed = parseUploadKey(given);
  } catch (err) {
    throw new UiError('invalid_upload_key', messageOf(err), { status: 400 });
  }
  if (parsed.project !== project)
    throw new UiError('wrong_project', `${given} is not an upload of ${project}`, { status: 400 });
  return parsed.key;
}

/** A text upload's words as plain text, for the script to put on the page (never as markup). */
function registerTexts(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/text', async (c) => {
    const key = uploadKeyParam(c, projectParam(c));
    if (modalityOfKey(key) !== 'text') throw new UiError('not_a_text', `${key} is a photo`, { status: 400 });
    const found = await ctx.store.get(key);
    if (!found) throw new UiError('not_found', `no text at ${key}`, { status: 404 });
    let text: string;
    try {
      text = decodeTextUpload(found.body);
    } catch (err) {
      throw new UiError(codeOf(err) ?? 'invalid_text', messageOf(err), { status: 422 });
    }
    return c.body(text, 200, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=300',
    });
  });
}

/** The image route: thumbnails of uploads and review items of one project, made server-side and cached. */
function registerThumbnails(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/thumb', async (c) => {
    const project = projectParam(c);
    const review = c.req.query('review');
    let key: string;
    if (review !== undefined) {
      if (!reviewIdSchema.safeParse(review).success)
        throw new UiError('invalid_review_id', 'not a review item id', { status: 400 });
      key = layout.reviewImage(project, review);
    } else {
      key = uploadKeyParam(c, project);
    }
    let thumb: Awaited<ReturnType<typeof ctx.thumbs.get>>;
    try {
      thumb = await ctx.thumbs.get(key);
    } catch (err) {
      if (err instanceof ImageError) throw new UiError(err.code, err.message, { status: 422 });
      throw err;
    }
    if (!thumb) throw new UiError('not_found', `no image at ${key}`, { status: 404 });
    if (c.req.header('if-none-match') === thumb.etag) return c.body(null, 304);
    return c.body(thumb.bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': `image/${thumb.format}`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=300',
      etag: thumb.etag,
    });
  });
}

/**
 * The dashboard: server-rendered pages under `/ui/` over one store, for the local stack (`npm start`) and
 * `headstart dashboard`. Never part of the edge function: it holds the store's credentials' power.
 */
export function createUiApp(deps: UiDeps): Hono {
  const guard = createUiGuard(deps.csrfToken ? { token: deps.csrfToken } : {});
  const ctx: UiContext = {
    deps,
    store: deps.store,
    token: guard.token,
    notices: createNotices(),
    thumbs: createThumbnailCache({ store: deps.store, maxEntries: deps.thumbnailCacheSize ?? 2000 }),
    snapshot: createSnapshotCache(deps.store),
    maxUploadBytes: deps.maxUploadBytes ?? 20 * 1024 * 1024,
  };
  const app = new Hono({ strict: false }).basePath('/ui');
  app.onError((err, c) => renderError(err, c, guard.token));
  app.notFound((c) =>
    renderError(new UiError('not_found', `there is no page ${c.req.path}`, { status: 404 }), c, guard.token),
  );
  app.use('*', guard.middleware);
  app.get('/assets/:file', (c) => {
    const asset = ASSETS[c.req.param('file')];
    if (!asset) throw new UiError('not_found', 'no such asset', { status: 404 });
    return c.body(asset.body, 200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
  });
  registerThumbnails(app, ctx);
  registerTexts(app, ctx);
  registerProjectsPage(app, ctx);
  registerDataPage(app, ctx);
  registerModelPage(app, ctx);
  registerMistakesPage(app, ctx);
  registerReviewPages(app, ctx);
  registerTryPage(app, ctx);
  registerKeysPage(app, ctx);
  return app;
}
