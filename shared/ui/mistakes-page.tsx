import type { Hono } from 'hono';
import {
  decodeEvaluation,
  examplesInCell,
  listVersions,
  readPointer,
  readVersionFile,
  type ValidationExample,
  type ValidationMetrics,
  VERSION_FILES,
  validationMetricsOf,
} from '../models/index.js';
import { fixed, nounOf, Page, Sample } from './layout.js';
import { projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

const HEAT_STEPS = 10;

function cellHref(project: string, version: string, label: string, predicted: string) {
  return `${projectPath(project, 'mistakes')}?version=${encodeURIComponent(version)}&label=${encodeURIComponent(label)}&predicted=${encodeURIComponent(predicted)}#cell`;
}

/** Rows are true labels, columns predictions; a cell's shade is its share of the row, and it links to its photos. */
function HeatMap(props: {
  project: string;
  version: string;
  m: ValidationMetrics;
  selected?: { label: string; predicted: string };
}) {
  const labels = props.m.perLabel.map((l) => l.label);
  return (
    <table id="confusion" class="heat">
      <thead>
        <tr>
          <th>true \ predicted</th>
          {labels.map((l) => (
            <th scope="col">{l}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.m.confusion.map((row, t) => {
          const total = row.reduce((a, b) => a + b, 0) || 1;
          return (
            <tr>
              <th scope="row">{labels[t]}</th>
              {row.map((n, p) => {
                const step = Math.round((n / total) * HEAT_STEPS);
                const chosen = props.selected?.label === labels[t] && props.selected?.predicted === labels[p];
                const kind = t === p ? 'hit' : 'miss';
                return (
                  <td
                    class={`cell ${kind} heat-${step}${chosen ? ' chosen' : ''}`}
                    data-label={labels[t]}
                    data-predicted={labels[p]}
                  >
                    <a href={cellHref(props.project, props.version, labels[t]!, labels[p]!)}>{n}</a>
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function PerLabel(props: { m: ValidationMetrics }) {
  return (
    <table id="per-label">
      <thead>
        <tr>
          <th>label</th>
          <th>precision</th>
          <th>recall</th>
          <th>F1</th>
          <th>photos</th>
        </tr>
      </thead>
      <tbody>
        {props.m.perLabel.map((l) => (
          <tr>
            <th>{l.label}</th>
            <td class="num">{fixed(l.precision)}</td>
            <td class="num">{fixed(l.recall)}</td>
            <td class="num">{fixed(l.f1)}</td>
            <td class="num">{l.support}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const BINS = 10;

/** Top-1 confidence against accuracy in 10 equal bins, from the same validation predictions as the matrix. */
function Reliability(props: { examples: ValidationExample[]; ece?: number | undefined }) {
  const bins = Array.from({ length: BINS }, () => ({ n: 0, right: 0 }));
  for (const e of props.examples) {
    const b = bins[Math.min(BINS - 1, Math.floor(e.score * BINS))]!;
    b.n++;
    if (e.label === e.predicted) b.right++;
  }
  const size = 200;
  const w = size / BINS;
  return (
    <figure id="reliability">
      <svg
        viewBox={`-30 -10 ${size + 40} ${size + 40}`}
        width="280"
        height="280"
        role="img"
        aria-label="reliability diagram"
      >
        <rect x="0" y="0" width={String(size)} height={String(size)} class="frame" />
        <line x1="0" y1={String(size)} x2={String(size)} y2="0" class="ideal" />
        {bins.map((b, i) =>
          b.n ? (
            <rect
              class="bar"
              x={String(i * w + 1)}
              width={String(w - 2)}
              y={String(size - (b.right / b.n) * size)}
              height={String((b.right / b.n) * size)}
            >
              <title>{`confidence ${i / BINS}-${(i + 1) / BINS}: ${b.right} of ${b.n} right`}</title>
            </rect>
          ) : null,
        )}
        <text x="0" y={String(size + 16)}>
          0
        </text>
        <text x={String(size - 8)} y={String(size + 16)}>
          1
        </text>
        <text x={String(size / 2 - 30)} y={String(size + 26)}>
          confidence
        </text>
        <text x="-28" y="8">
          1
        </text>
        <text x="-28" y={String(size / 2)}>
          acc.
        </text>
      </svg>
      <figcaption>
        Bars: accuracy of the validation photos in each confidence bin; the diagonal is perfect calibration.
        {props.ece !== undefined ? ` Expected calibration error ${fixed(props.ece)}.` : ''}
      </figcaption>
    </figure>
  );
}

function CellPhotos(props: {
  project: string;
  label: string;
  predicted: string;
  examples: ValidationExample[];
}) {
  return (
    <section id="cell" class="panel">
      <h2>
        {props.label} predicted as {props.predicted}:{' '}
        {nounOf(
          props.examples.map((e) => e.key),
          props.examples.length,
        )}
      </h2>
      <div class="thumbs">
        {props.examples.map((e) => (
          <figure class="example" data-key={e.key}>
            <Sample project={props.project} src={{ key: e.key }} alt={e.key} />
            <figcaption>
              <code>{e.key.slice(e.key.lastIndexOf('/') + 1)}</code>
              <br />
              score {fixed(e.score)}
              {e.outlierScore !== null ? `, outlier ${fixed(e.outlierScore, 2)}` : ''}
            </figcaption>
          </figure>
        ))}
      </div>
    </section>
  );
}

async function chosenVersion(ctx: UiContext, project: string, asked: string | undefined) {
  if (asked) return asked;
  const pointer = await readPointer(ctx.store, project);
  if (pointer) return pointer.pointer.version;
  return (await listVersions(ctx.store, project)).sort().pop();
}

/** The confusion matrix as a heat map, each cell's photos, per-label precision and recall, the calibration. */
export function registerMistakesPage(app: Hono, ctx: UiContext): void {
  app.get('/p/:project/mistakes', async (c) => {
    const project = projectParam(c);
    const version = await chosenVersion(ctx, project, c.req.query('version'));
    const notice = ctx.notices.take(c.req.query('notice'));
    if (!version) {
      return c.html(
        <Page title="Mistakes" token={ctx.token} project={project} active="mistakes" notice={notice}>
          <p>No versions yet: upload photos and train.</p>
        </Page>,
      );
    }
    const read = await readVersionFile(ctx.store, project, version, VERSION_FILES.evaluation);
    if (!read)
      throw new UiError(
        'unknown_version',
        `project '${project}' has no version '${version}' with an evaluation`,
        { status: 404 },
      );
    const evaluation = decodeEvaluation(read.body, `version ${version} of '${project}'`);
    const m = validationMetricsOf(evaluation);
    const label = c.req.query('label');
    const predicted = c.req.query('predicted');
    const examples = evaluation.validationExamples ?? [];
    const cell =
      label !== undefined && predicted !== undefined
        ? examplesInCell(evaluation, { label, predicted }).sort((x, y) => y.score - x.score)
        : undefined;
    return c.html(
      <Page title="Mistakes" token={ctx.token} project={project} active="mistakes" notice={notice}>
        <p>
          Version <code>{version}</code>: validation accuracy {fixed(m?.accuracy)}, macro-F1{' '}
          {fixed(m?.macroF1)} on {m?.n ?? 0} photos. Click a cell to see its photos.
          {examples.length === 0
            ? ' This version lists no validation photos (trained before they were recorded).'
            : ''}
        </p>
        {m ? (
          <div class="row">
            <HeatMap
              project={project}
              version={version}
              m={m}
              {...(label !== undefined && predicted !== undefined ? { selected: { label, predicted } } : {})}
            />
            <Reliability examples={examples} ece={m.ece} />
          </div>
        ) : (
          <p>This version's evaluation has no confusion matrix.</p>
        )}
        {cell && label !== undefined && predicted !== undefined ? (
          <CellPhotos project={project} label={label} predicted={predicted} examples={cell} />
        ) : null}
        {m ? (
          <>
            <h2>Per label</h2>
            <PerLabel m={m} />
          </>
        ) : null}
      </Page>,
    );
  });
}
