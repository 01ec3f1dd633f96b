import type { Hono } from 'hono';
import type { Example } from '../dataset/dataset-index.js';
import { dedupeExamples } from '../dataset/dedupe-examples.js';
import { listQuarantine } from '../dataset/quarantine.js';
import { messageOf } from '../headstart-error.js';
import { relabelUpload, removeUpload } from '../pipeline/upload-edits.js';
import { uploadPhoto } from '../pipeline/upload-photo.js';
import { Csrf, nounOf, Page, Sample } from './layout.js';
import { done, field, fields, projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

/** Thumbnails per label on the overview; a label's own page shows the rest, a page at a time. */
const PREVIEW = 24;
const PAGE = 120;

const fileOf = (key: string) => key.slice(key.lastIndexOf('/') + 1);

function LabelSection(props: {
  project: string;
  label: string;
  examples: Example[];
  shown: Example[];
  more?: string;
}) {
  return (
    <section class="label-section" data-label={props.label}>
      <h2>
        <a href={`${projectPath(props.project, 'data')}?label=${encodeURIComponent(props.label)}`}>
          {props.label}
        </a>{' '}
        <span class="count">
          {nounOf(
            props.examples.map((e) => e.key),
            props.examples.length,
          )}
        </span>
      </h2>
      <div class="thumbs">
        {props.shown.map((e) => (
          <label class="pick" title={e.key}>
            <input type="checkbox" name="key" value={e.key} form="edit-form" />
            <Sample project={props.project} src={{ key: e.key }} alt={fileOf(e.key)} />
          </label>
        ))}
      </div>
      {props.more ? (
        <p>
          <a href={props.more}>more of {props.label}</a>
        </p>
      ) : null}
    </section>
  );
}

function UploadPanel(props: { project: string }) {
  return (
    <section id="upload" class="panel">
      <h2>Upload</h2>
      <p>
        Drop a folder of label folders here (<code>photos/hat/1.jpg</code>, <code>photos/shoes/2.jpg</code>),
        or pick one. Each folder name is a label.
      </p>
      <div
        id="drop-zone"
        class="drop-zone"
        data-upload-url={projectPath(props.project, 'upload')}
        tabindex={0}
      >
        <input type="file" id="folder-input" webkitdirectory multiple aria-label="folder of label folders" />
        <span>or drop it here</span>
      </div>
      <progress id="upload-progress" max="1" value="0" hidden />
      <p id="upload-status" role="status" />
      <ul id="upload-refused" />
    </section>
  );
}

function EditForm(props: { project: string; token: string; labels: string[] }) {
  return (
    <form id="edit-form" method="post" action={projectPath(props.project, 'data/edit')} class="panel toolbar">
      <Csrf token={props.token} />
      <span>Selected photos:</span>
      <label>
        move to <input name="label" list="label-list" placeholder="label" />
      </label>
      <datalist id="label-list">
        {props.labels.map((l) => (
          <option value={l} />
        ))}
      </datalist>
      <button type="submit" name="op" value="relabel">
        Relabel
      </button>
      <button type="submit" name="op" value="remove" class="danger">
        Remove
      </button>
    </form>
  );
}

function Quarantine(props: { records: { key: string; code: string; message: string }[] }) {
  if (props.records.length === 0) return <p>Nothing set aside.</p>;
  return (
    <table id="quarantine">
      <thead>
        <tr>
          <th>upload</th>
          <th>reason</th>
          <th>message</th>
        </tr>
      </thead>
      <tbody>
        {props.records.map((q) => (
          <tr>
            <td>
              <code>{q.key}</code>
            </td>
            <td>
              <code>{q.code}</code>
            </td>
            <td>{q.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

async function editSelected(ctx: UiContext, project: string, op: string, keys: string[], label: string) {
  let ok = 0;
  const failed: string[] = [];
  for (const key of keys) {
    try {
      if (op === 'remove') await removeUpload(ctx.store, { project, key });
      else await relabelUpload(ctx.store, { project, key, label });
      ok++;
    } catch (err) {
      failed.push(`${key}: ${messageOf(err)}`);
    }
  }
  const verb = op === 'remove' ? 'removed' : `moved to '${label}'`;
  return `${ok} ${verb}${failed.length ? `; ${failed.length} failed: ${failed.join('; ')}` : ''}. The project retrains after a quiet period.`;
}

/** Photos per label with thumbnails, what was set aside and why, folder upload, relabel and remove. */
export function registerDataPage(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/data', async (c) => {
    const project = projectParam(c);
    const [examples, quarantine] = await Promise.all([
      ctx.snapshot(project),
      listQuarantine(ctx.store, project),
    ]);
    const byLabel = new Map<string, Example[]>();
    for (const e of dedupeExamples(examples).examples) {
      const list = byLabel.get(e.label) ?? [];
      list.push(e);
      byLabel.set(e.label, list);
    }
    const labels = [...byLabel.keys()].sort();
    const only = c.req.query('label');
    const page = Math.max(0, Number.parseInt(c.req.query('page') ?? '0', 10) || 0);
    const sections = (only !== undefined ? labels.filter((l) => l === only) : labels).map((label) => {
      const all = byLabel.get(label)!;
      const from = only !== undefined ? page * PAGE : 0;
      const shown = all.slice(from, from + (only !== undefined ? PAGE : PREVIEW));
      const next = from + shown.length < all.length;
      const more = next
        ? `${projectPath(project, 'data')}?label=${encodeURIComponent(label)}${only !== undefined ? `&page=${page + 1}` : ''}`
        : undefined;
      return (
        <LabelSection
          project={project}
          label={label}
          examples={all}
          shown={shown}
          {...(more ? { more } : {})}
        />
      );
    });
    return c.html(
      <Page
        title="Data"
        token={ctx.token}
        project={project}
        active="data"
        notice={ctx.notices.take(c.req.query('notice'))}
      >
        <p>
          {examples.length} uploads indexed in {labels.length} labels; {quarantine.length} set aside.
        </p>
        <UploadPanel project={project} />
        <EditForm project={project} token={ctx.token} labels={labels} />
        {sections}
        <h2>Set aside</h2>
        <Quarantine records={quarantine} />
      </Page>,
    );
  });

  app.post('/p/:project/data/edit', async (c) => {
    const project = projectParam(c);
    const op = (await field(c, 'op')) ?? '';
    const keys = await fields(c, 'key');
    const label = ((await field(c, 'label')) ?? '').trim();
    if (op !== 'remove' && op !== 'relabel')
      throw new UiError('invalid_form', 'op must be relabel or remove', { status: 400 });
    if (keys.length === 0)
      throw new UiError('invalid_form', 'select at least one photo first', { status: 400 });
    if (op === 'relabel' && !label)
      throw new UiError('invalid_form', 'give the label to move the photos to', { status: 400 });
    const message = await editSelected(ctx, project, op, keys, label);
    return done(ctx, c, { back: projectPath(project, 'data'), message });
  });

  // One photo per request, so the page can show progress and a refusal names its file.
  app.post('/p/:project/upload', async (c) => {
    const project = projectParam(c);
    const path = (c.req.query('path') ?? '').split('/').filter(Boolean);
    const length = Number(c.req.header('content-length') ?? '0');
    if (length > ctx.maxUploadBytes + 1024) {
      return c.json({
        status: 'refused',
        code: 'upload_too_large',
        message: `over the ${ctx.maxUploadBytes}-byte limit`,
      });
    }
    if (path.length < 2) {
      return c.json({
        status: 'refused',
        code: 'no_label',
        message: 'not in a label folder (<folder>/<label>/<file>)',
      });
    }
    if (path.length > 3) {
      return c.json({
        status: 'refused',
        code: 'key_too_deep',
        message: 'labels are one folder deep: move it into its label folder',
      });
    }
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const r = await uploadPhoto(ctx.store, {
      project,
      label: path[path.length - 2]!,
      file: path[path.length - 1]!,
      bytes,
      maxUploadBytes: ctx.maxUploadBytes,
    });
    return c.json(r);
  });
}
