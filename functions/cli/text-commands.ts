import { MAX_TEXT_CHARACTERS } from '../../shared/dataset/text-upload.js';
import { MAX_BATCH_TEXTS } from '../../shared/http/api-schemas.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';
import { type EvalReport, evalReport } from './eval-command.js';
import { call, type Prediction } from './predict-commands.js';
import { readTextTable, type TableColumns, type TableRow } from './upload-table.js';

export interface TextPrediction {
  text: string;
  predictions: Prediction[];
  version: string;
  /** Whether the version's outlier detector calls the text unknown; null for a version without one. */
  unknown: boolean | null;
}

type TextAnswer = { predictions: Prediction[]; unknown?: boolean | null };

/** Up to `MAX_BATCH_TEXTS` texts in one `{"texts": [...]}` request; one result per text, in order. */
async function predictBatch(target: Target, project: string, texts: string[], topK: number) {
  return (await call(target, `/v1/projects/${encodeURIComponent(project)}/predict?topK=${topK}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ texts }),
  })) as { model: { version: string }; results: TextAnswer[] };
}

/** Classifies texts through the API of a text project, in batches the API takes. */
export async function predictTexts(options: {
  target: Target;
  project: string;
  texts: string[];
  topK: number;
}): Promise<TextPrediction[]> {
  const out: TextPrediction[] = [];
  for (let i = 0; i < options.texts.length; i += MAX_BATCH_TEXTS) {
    const texts = options.texts.slice(i, i + MAX_BATCH_TEXTS);
    const res = await predictBatch(options.target, options.project, texts, options.topK);
    for (const [j, r] of res.results.entries()) {
      out.push({
        text: texts[j]!,
        predictions: r.predictions,
        version: res.model.version,
        unknown: r.unknown ?? null,
      });
    }
  }
  return out;
}

export function formatTextPredictions(res: TextPrediction[]): string {
  return res
    .map(
      (r) =>
        `${JSON.stringify(r.text)}: ${r.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')}`,
    )
    .join('\n');
}

/** Why a row cannot be sent at all (the API's own rules for a text), or undefined. */
function rowProblem(row: TableRow): { code: string; message: string } | undefined {
  if (row.text.trim() === '') return { code: 'empty_text', message: 'the text is empty' };
  const n = [...row.text].length;
  if (n > MAX_TEXT_CHARACTERS) {
    return {
      code: 'text_too_long',
      message: `the text is ${n} characters; the limit is ${MAX_TEXT_CHARACTERS}`,
    };
  }
  return undefined;
}

/**
 * Scores the current model of a text project on a labelled table (CSV or JSONL, as `upload` reads it) that never
 * enters training: the texts go through the prediction API in batches. Rows are named by file and line; a row
 * whose label the model does not know is skipped, an empty or over-long one listed as failed.
 */
export async function evaluateTable(options: {
  target: Target;
  project: string;
  path: string;
  columns?: TableColumns;
}): Promise<EvalReport> {
  const { target, project } = options;
  const model = (await call(target, `/v1/projects/${encodeURIComponent(project)}/model`, {
    method: 'GET',
  })) as { version: string; labels: string[] };
  const { labels } = model;
  const skipped: EvalReport['skipped'] = [];
  const failed: EvalReport['failed'] = [];
  const toScore: TableRow[] = [];
  for (const row of readTextTable(options.path, options.columns)) {
    const problem = rowProblem(row);
    if (problem) failed.push({ file: row.at, ...problem });
    else if (!labels.includes(row.label))
      skipped.push({ file: row.at, reason: `label '${row.label}' is not in the model` });
    else toScore.push(row);
  }
  if (toScore.length === 0 && failed.length === 0)
    throw new CliError(`no row of ${options.path} has a label the model knows (${labels.join(', ')})`);
  const probs: number[][] = [];
  const unknowns: (boolean | null)[] = [];
  for (let i = 0; i < toScore.length; i += MAX_BATCH_TEXTS) {
    const batch = toScore.slice(i, i + MAX_BATCH_TEXTS);
    const res = await predictBatch(
      target,
      project,
      batch.map((r) => r.text),
      labels.length,
    );
    for (const r of res.results) {
      const row = new Array<number>(labels.length).fill(0);
      for (const p of r.predictions) row[labels.indexOf(p.label)] = p.score;
      probs.push(row);
      unknowns.push(r.unknown ?? null);
    }
  }
  return evalReport({
    project,
    version: model.version,
    labels,
    scored: toScore.map((r, i) => ({ file: r.at, label: r.label, probs: probs[i]!, unknown: unknowns[i]! })),
    skipped,
    failed,
  });
}
