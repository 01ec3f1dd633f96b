import type { Hono } from 'hono';
import { readProjectSettings } from '../pipeline/project-settings.js';
import { Page } from './layout.js';
import { projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

/** Drop a photo (or take one with the webcam), or type a text in a text project, and see what the current version says of it, as the API would answer, with its timings. */
export function registerTryPage(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/try', async (c) => {
    const project = projectParam(c);
    const { modality } = await readProjectSettings(ctx.store, project);
    return c.html(
      <Page title="Try it" token={ctx.token} project={project} active="try">
        {ctx.deps.predict ? null : (
          <p class="notice error">Predictions are not available in this dashboard.</p>
        )}
        {modality === 'text' ? <TryText project={project} /> : <TryPhoto project={project} />}
        <div id="try-result" role="status" />
      </Page>,
    );
  });
  registerTryPost(app, ctx);
}

/** A text project's form: the text goes to the API as text/plain. */
function TryText(props: { project: string }) {
  return (
    <form id="try-text-form" class="panel" data-try-url={projectPath(props.project, 'try')}>
      <label for="try-text">A text to classify</label>
      <textarea id="try-text" rows={4} cols={60} maxlength={10000} required />
      <button type="submit">Classify</button>
    </form>
  );
}

function TryPhoto(props: { project: string }) {
  const project = props.project;
  return (
    <>
      <div id="try-zone" class="drop-zone" data-try-url={projectPath(project, 'try')} tabindex={0}>
        <input
          type="file"
          id="try-input"
          accept="image/jpeg,image/png,image/webp"
          aria-label="photo to classify"
        />
        <span>or drop a photo here</span>
      </div>
      <div class="row webcam">
        <button type="button" id="webcam-start">
          Use the webcam
        </button>
        <button type="button" id="webcam-capture" hidden>
          Classify this frame
        </button>
        <video id="webcam-video" autoplay playsinline muted hidden />
      </div>
      <div class="row">
        <img id="try-preview" alt="" hidden />
      </div>
    </>
  );
}

function registerTryPost(app: Hono, ctx: UiContext): void {
  app.post('/p/:project/try', async (c) => {
    const project = projectParam(c);
    if (!ctx.deps.predict)
      throw new UiError('predict_unavailable', 'predictions are not available here', { status: 503 });
    const body = new Uint8Array(await c.req.arrayBuffer());
    const res = await ctx.deps.predict({
      project,
      body,
      contentType: c.req.header('content-type') ?? 'application/octet-stream',
    });
    return c.body(await res.text(), res.status as 200, { 'content-type': 'application/json' });
  });
}
