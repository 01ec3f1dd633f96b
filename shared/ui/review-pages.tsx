import type { Hono } from 'hono';
import { readPointer, readVersion } from '../models/index.js';
import { readProjectSettings, updateProjectSettings } from '../pipeline/project-settings.js';
import { listSuspects, relabelUpload, removeUpload } from '../pipeline/upload-edits.js';
import { discardReviewItem, labelReviewItem, listReviewItems, type ReviewListing } from '../review/index.js';
import type { ObjectStore } from '../store/index.js';
import { Csrf, fixed, Page, Sample } from './layout.js';
import { done, field, projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

/** A one-key action: the page's script submits the form whose `data-shortcut` is the key pressed. */
function Action(props: {
  action: string;
  token: string;
  shortcut?: string;
  label: string;
  fields?: Record<string, string>;
  danger?: boolean;
}) {
  return (
    <form
      method="post"
      action={props.action}
      class="inline"
      data-inline="1"
      {...(props.shortcut ? { 'data-shortcut': props.shortcut } : {})}
    >
      <Csrf token={props.token} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.danger ? 'danger' : undefined}>
        {props.label}
        {props.shortcut ? <kbd>{props.shortcut}</kbd> : null}
      </button>
    </form>
  );
}

const Shortcuts = (props: { extra: string }) => (
  <p class="shortcuts">
    Keys: <kbd>j</kbd>/<kbd>k</kbd> next and previous, {props.extra}. The next item is selected after each
    action.
  </p>
);

async function currentLabels(store: ObjectStore, project: string): Promise<string[]> {
  const pointer = await readPointer(store, project);
  return pointer ? (await readVersion(store, project, pointer.pointer.version)).manifest.labels : [];
}

function ReviewItem(props: { project: string; token: string; item: ReviewListing; labels: string[] }) {
  const { item, project } = props;
  const base = projectPath(project, `review/${item.id}`);
  return (
    <li class="queue-item" tabindex={0} data-id={item.id}>
      <Sample
        project={project}
        src={{ review: item.id }}
        alt={`review item ${item.id.slice(0, 12)}`}
        text={item.text}
      />
      <div class="about">
        <p>
          predicted <strong>{item.prediction.label}</strong> {fixed(item.prediction.score)}
          {item.unknown ? ' (unknown)' : ''} <span class="reason">{item.reason}</span>
        </p>
        <p class="small">
          {item.createdAt} by <code>{item.version}</code>
        </p>
        <div class="actions">
          <Action
            action={`${base}/label`}
            token={props.token}
            shortcut="a"
            label={`is ${item.prediction.label}`}
            fields={{ label: item.prediction.label }}
          />
          {props.labels.slice(0, 9).map((l, i) => (
            <Action
              action={`${base}/label`}
              token={props.token}
              shortcut={String(i + 1)}
              label={l}
              fields={{ label: l }}
            />
          ))}
          <Action action={`${base}/discard`} token={props.token} shortcut="d" label="discard" danger />
        </div>
      </div>
    </li>
  );
}

function SuspectItem(props: {
  project: string;
  token: string;
  s: { key: string; label: string; suspectedLabel: string; confidence: number };
}) {
  const { s, project } = props;
  return (
    <li class="queue-item" tabindex={0} data-key={s.key}>
      <Sample project={project} src={{ key: s.key }} alt={s.key} />
      <div class="about">
        <p>
          labelled <strong>{s.label}</strong>, looks like <strong>{s.suspectedLabel}</strong> (
          {fixed(s.confidence)})
        </p>
        <p class="small">
          <code>{s.key}</code>
        </p>
        <div class="actions">
          <Action
            action={projectPath(project, 'suspects/relabel')}
            token={props.token}
            shortcut="r"
            label={`relabel as ${s.suspectedLabel}`}
            fields={{ key: s.key, label: s.suspectedLabel }}
          />
          <Action
            action={projectPath(project, 'suspects/remove')}
            token={props.token}
            shortcut="x"
            label="remove"
            fields={{ key: s.key }}
            danger
          />
        </div>
      </div>
    </li>
  );
}

function ReviewSettingsForm(props: {
  project: string;
  token: string;
  enabled: boolean;
  below: number;
  sample: number;
}) {
  return (
    <form method="post" action={projectPath(props.project, 'review/settings')} class="inline panel">
      <Csrf token={props.token} />
      <span>The queue is {props.enabled ? 'on' : 'off'}.</span>
      <label>
        keep photos scored below <input name="below" value={String(props.below)} size={4} />
      </label>
      <label>
        and a sample of <input name="sample" value={String(props.sample)} size={4} />
      </label>
      <button type="submit" name="enabled" value={props.enabled ? '0' : '1'}>
        {props.enabled ? 'Turn off' : 'Turn on'}
      </button>
    </form>
  );
}

function fraction(raw: string | undefined, name: string): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new UiError('invalid_form', `${name} must be a number from 0 to 1`, { status: 400 });
  }
  return n;
}

/** Suspects and the review queue, with one-key actions that go through uploads/ like any change to the data. */
export function registerReviewPages(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/suspects', async (c) => {
    const project = projectParam(c);
    const list = await listSuspects(ctx.store, project, { snapshot: ctx.snapshot });
    return c.html(
      <Page
        title="Suspects"
        token={ctx.token}
        project={project}
        active="suspects"
        notice={ctx.notices.take(c.req.query('notice'))}
      >
        <p>
          {list.version
            ? `${list.suspects.length} photos whose label the cross-validated predictions of ${list.version} doubt, most suspect first (${list.photos} checked${list.settled ? `, ${list.settled} settled since` : ''}).`
            : 'No training has ranked label suspects yet.'}
        </p>
        <Shortcuts extra="r relabel as the suspected label, x remove" />
        <ul class="queue" id="suspects">
          {list.suspects.map((s) => (
            <SuspectItem project={project} token={ctx.token} s={s} />
          ))}
        </ul>
      </Page>,
    );
  });
  app.post('/p/:project/suspects/relabel', async (c) => {
    const project = projectParam(c);
    const r = await relabelUpload(ctx.store, {
      project,
      key: (await field(c, 'key')) ?? '',
      label: (await field(c, 'label')) ?? '',
    });
    const message = r.changed ? `moved ${r.from} to ${r.to}` : `${r.from} already has that label`;
    return done(ctx, c, { back: projectPath(project, 'suspects'), message });
  });
  app.post('/p/:project/suspects/remove', async (c) => {
    const project = projectParam(c);
    const r = await removeUpload(ctx.store, { project, key: (await field(c, 'key')) ?? '' });
    return done(ctx, c, { back: projectPath(project, 'suspects'), message: `removed ${r.removed}` });
  });

  app.get('/p/:project/review', async (c) => {
    const project = projectParam(c);
    const [{ items, total }, labels, settings] = await Promise.all([
      listReviewItems(ctx.store, project, { limit: 200 }),
      currentLabels(ctx.store, project),
      readProjectSettings(ctx.store, project),
    ]);
    return c.html(
      <Page
        title="Review"
        token={ctx.token}
        project={project}
        active="review"
        notice={ctx.notices.take(c.req.query('notice'))}
      >
        <ReviewSettingsForm project={project} token={ctx.token} {...settings.review} />
        <p>
          {total} photos the API was unsure about
          {items.length < total ? ` (the oldest ${items.length} shown)` : ''}. Labelling one makes it an
          upload of that label; the project retrains after a quiet period.
        </p>
        <Shortcuts extra="a the predicted label, 1-9 the labels in order, d discard" />
        <ul class="queue" id="review-items">
          {items.map((item) => (
            <ReviewItem project={project} token={ctx.token} item={item} labels={labels} />
          ))}
        </ul>
      </Page>,
    );
  });
  app.post('/p/:project/review/settings', async (c) => {
    const project = projectParam(c);
    const enabled = (await field(c, 'enabled')) === '1';
    const below = fraction(await field(c, 'below'), 'below');
    const sample = fraction(await field(c, 'sample'), 'sample');
    await updateProjectSettings(ctx.store, project, () => ({ review: { enabled, below, sample } }));
    const message = `review queue ${enabled ? 'on' : 'off'} (each API instance notices within 5 minutes)`;
    return done(ctx, c, { back: projectPath(project, 'review'), message });
  });
  app.post('/p/:project/review/:id/label', async (c) => {
    const project = projectParam(c);
    const r = await labelReviewItem(ctx.store, {
      project,
      id: c.req.param('id'),
      label: (await field(c, 'label')) ?? '',
    });
    const message = r.created ? `now ${r.upload}` : `already labelled ${r.label} (${r.upload})`;
    return done(ctx, c, { back: projectPath(project, 'review'), message, value: r });
  });
  app.post('/p/:project/review/:id/discard', async (c) => {
    const project = projectParam(c);
    const r = await discardReviewItem(ctx.store, { project, id: c.req.param('id') });
    return done(ctx, c, { back: projectPath(project, 'review'), message: `discarded ${r.id.slice(0, 12)}` });
  });
}
