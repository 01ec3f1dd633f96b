import type { Hono } from 'hono';
import { compareSequencers } from '../dataset/sequencer.js';
import {
  decodeEvaluation,
  readVersion,
  readVersionFile,
  type ValidationMetrics,
  VERSION_FILES,
  validationMetricsOf,
} from '../models/index.js';
import { listModels, type ModelRow, rollbackTo } from '../pipeline/project-status.js';
import { readRetrainRequest, writeRetrainRequest } from '../pipeline/retrain-requests.js';
import { formatTrainOutcome } from '../pipeline/train-outcome-text.js';
import { readTrainingState } from '../pipeline/train-project.js';
import { formatProgress } from '../pipeline/training-progress.js';
import type { ObjectStore } from '../store/index.js';
import { Csrf, fixed, Page } from './layout.js';
import { done, field, projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

/** Where training is: running (with its progress), requested and not yet picked up, or idle with its last result. */
async function trainingPanel(store: ObjectStore, project: string) {
  const [state, request] = await Promise.all([
    readTrainingState(store, project),
    readRetrainRequest(store, project),
  ]);
  const pending =
    request !== undefined &&
    (!state?.consumedSequence || compareSequencers(state.consumedSequence, request.sequence) < 0);
  const running = state?.state === 'training';
  const line = running
    ? state.progress
      ? `training: ${formatProgress(state.progress)}`
      : 'training: starting'
    : pending
      ? 'training requested; waiting for it to start'
      : 'idle';
  return {
    busy: running || pending,
    line,
    last: state?.lastOutcome ? formatTrainOutcome(state.lastOutcome) : undefined,
  };
}

function VersionsTable(props: { project: string; rows: ModelRow[] }) {
  return (
    <table id="versions">
      <thead>
        <tr>
          <th />
          <th>version</th>
          <th>created</th>
          <th>mode</th>
          <th>accuracy</th>
          <th>macro-F1</th>
          <th>decision</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr data-version={r.version} class={r.current ? 'current' : undefined}>
            <td>{r.current ? 'current' : ''}</td>
            <td>
              <code>{r.version}</code>
            </td>
            <td>{r.createdAt}</td>
            <td>{r.mode ?? ''}</td>
            <td class="num">{fixed(r.accuracy)}</td>
            <td class="num">{fixed(r.macroF1)}</td>
            <td>
              {r.decision ?? ''}
              {r.reason ? <span class="reason"> ({r.reason})</span> : null}
            </td>
            <td>
              {r.current ? null : (
                <a
                  class="rollback"
                  href={`${projectPath(props.project, 'model/rollback')}?to=${encodeURIComponent(r.version)}`}
                >
                  make current
                </a>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

async function metricsOf(store: ObjectStore, project: string, version: string) {
  const [v, read] = await Promise.all([
    readVersion(store, project, version),
    readVersionFile(store, project, version, VERSION_FILES.evaluation),
  ]);
  const evaluation = read ? decodeEvaluation(read.body, version) : undefined;
  return { manifest: v.manifest, validation: evaluation ? validationMetricsOf(evaluation) : undefined };
}

function Compare(props: {
  a: { version: string; validation: ValidationMetrics | undefined };
  b: { version: string; validation: ValidationMetrics | undefined };
}) {
  const labels = [
    ...new Set(
      [...(props.a.validation?.perLabel ?? []), ...(props.b.validation?.perLabel ?? [])].map((l) => l.label),
    ),
  ];
  const of = (v: ValidationMetrics | undefined, label: string) => v?.perLabel.find((l) => l.label === label);
  return (
    <table id="compare">
      <thead>
        <tr>
          <th />
          <th colspan={3}>{props.a.version}</th>
          <th colspan={3}>{props.b.version}</th>
        </tr>
        <tr>
          <th>label</th>
          <th>precision</th>
          <th>recall</th>
          <th>F1</th>
          <th>precision</th>
          <th>recall</th>
          <th>F1</th>
        </tr>
      </thead>
      <tbody>
        <tr>
          <th>accuracy / macro-F1 / n</th>
          <td
            colspan={3}
          >{`${fixed(props.a.validation?.accuracy)} / ${fixed(props.a.validation?.macroF1)} / ${props.a.validation?.n ?? '-'}`}</td>
          <td
            colspan={3}
          >{`${fixed(props.b.validation?.accuracy)} / ${fixed(props.b.validation?.macroF1)} / ${props.b.validation?.n ?? '-'}`}</td>
        </tr>
        {labels.map((label) => {
          const x = of(props.a.validation, label);
          const y = of(props.b.validation, label);
          return (
            <tr>
              <th>{label}</th>
              <td class="num">{fixed(x?.precision)}</td>
              <td class="num">{fixed(x?.recall)}</td>
              <td class="num">{fixed(x?.f1)}</td>
              <td class="num">{fixed(y?.precision)}</td>
              <td class="num">{fixed(y?.recall)}</td>
              <td class="num">{fixed(y?.f1)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function CompareForm(props: { project: string; rows: ModelRow[]; a?: string; b?: string }) {
  const options = (chosen?: string) =>
    props.rows.map((r) => (
      <option value={r.version} selected={r.version === chosen}>
        {r.version}
      </option>
    ));
  return (
    <form method="get" action={projectPath(props.project, 'model')} class="inline" id="compare-form">
      <select name="a" aria-label="first version">
        {options(props.a)}
      </select>
      <select name="b" aria-label="second version">
        {options(props.b)}
      </select>
      <button type="submit">Compare</button>
    </form>
  );
}

/** Versions with their scores and decisions, rollback with confirmation, two versions side by side, training. */
export function registerModelPage(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/model', async (c) => {
    const project = projectParam(c);
    const [rows, training] = await Promise.all([
      listModels(ctx.store, project),
      trainingPanel(ctx.store, project),
    ]);
    rows.sort((x, y) => (x.version < y.version ? 1 : -1));
    const a = c.req.query('a');
    const b = c.req.query('b');
    const compared =
      a && b
        ? await Promise.all([metricsOf(ctx.store, project, a), metricsOf(ctx.store, project, b)])
        : undefined;
    return c.html(
      <Page
        title="Model"
        token={ctx.token}
        project={project}
        active="model"
        notice={ctx.notices.take(c.req.query('notice'))}
        {...(training.busy ? { refreshSeconds: 2 } : {})}
      >
        <section class="panel" id="training">
          <h2>Training</h2>
          <p id="training-state">{training.line}</p>
          {training.last ? <p id="last-outcome">Last: {training.last}</p> : null}
          <form method="post" action={projectPath(project, 'model/train')} class="inline">
            <Csrf token={ctx.token} />
            <label>
              <input type="checkbox" name="force" value="1" /> even if unchanged, and promote past the gate
            </label>
            <button type="submit" id="train-now">
              Train now
            </button>
          </form>
        </section>
        <h2>Versions</h2>
        {rows.length ? <VersionsTable project={project} rows={rows} /> : <p>No versions yet.</p>}
        {rows.length > 1 ? (
          <>
            <h2>Compare two versions</h2>
            <CompareForm project={project} rows={rows} {...(a ? { a } : {})} {...(b ? { b } : {})} />
            {compared && a && b ? (
              <Compare
                a={{ version: a, validation: compared[0].validation }}
                b={{ version: b, validation: compared[1].validation }}
              />
            ) : null}
          </>
        ) : null}
      </Page>,
    );
  });

  app.post('/p/:project/model/train', async (c) => {
    const project = projectParam(c);
    const force = (await field(c, 'force')) === '1';
    await writeRetrainRequest(ctx.store, project, { immediate: true, force });
    await ctx.deps.trigger?.notify(project);
    return done(ctx, c, { back: projectPath(project, 'model'), message: `training of ${project} requested` });
  });

  app.get('/p/:project/model/rollback', async (c) => {
    const project = projectParam(c);
    const to = c.req.query('to') ?? '';
    const rows = await listModels(ctx.store, project);
    const target = rows.find((r) => r.version === to);
    if (!target)
      throw new UiError('unknown_version', `project '${project}' has no version '${to}'`, { status: 404 });
    const current = rows.find((r) => r.current);
    return c.html(
      <Page title="Make another version current?" token={ctx.token} project={project} active="model">
        <p id="confirm-text">
          {project} serves {current?.version ?? 'no version'} (macro-F1 {fixed(current?.macroF1)}). Serve{' '}
          <code>{to}</code> (macro-F1 {fixed(target.macroF1)}) instead? The API switches within its pointer
          TTL.
        </p>
        <form method="post" action={projectPath(project, 'model/rollback')} class="inline">
          <Csrf token={ctx.token} />
          <input type="hidden" name="to" value={to} />
          <button type="submit" id="confirm-rollback" class="danger">
            Yes, make {to} current
          </button>{' '}
          <a href={projectPath(project, 'model')}>Cancel</a>
        </form>
      </Page>,
    );
  });

  app.post('/p/:project/model/rollback', async (c) => {
    const project = projectParam(c);
    const to = (await field(c, 'to')) ?? '';
    const v = await rollbackTo(ctx.store, project, to);
    return done(ctx, c, { back: projectPath(project, 'model'), message: `${project} now serves ${v}` });
  });
}
