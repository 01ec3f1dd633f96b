import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { argmaxRow, computeMetrics, type Metrics } from '../../shared/train/index.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';
import { type LabelledFile, listLabelledFiles } from './labelled-folder.js';
import {
  call,
  type FileError,
  fileError,
  type Prediction,
  predictOne,
  tooLargeForApi,
} from './predict-commands.js';

export interface EvalReport {
  project: string;
  version: string;
  /** Images scored. */
  n: number;
  /** Over the scored images; null when none could be scored. */
  accuracy: number | null;
  /** Mean F1 over the labels with at least one scored image in the folder (see labelsNotInFolder). */
  macroF1: number | null;
  /** Every model label, in model order; a label not in the folder has support 0. */
  perLabel: Metrics['perLabel'];
  confusion: number[][];
  labels: string[];
  /** Model labels with no scored image in the folder: left out of macroF1 (their F1 would be 0 by default). */
  labelsNotInFolder: string[];
  /** Not evaluated by design: labels the model does not know, files outside a label folder, hidden files. */
  skipped: { file: string; reason: string }[];
  /** Share of the scored images the version's outlier detector called unknown; null without a detector. */
  unknownRate: number | null;
  /** Images that should have been scored and could not be, each with its error. */
  failed: ({ file: string } & FileError)[];
  /** Every scored image, by path: its folder's label, the model's top label and score, and the detector's call. */
  examples: EvalExample[];
}

export interface EvalExample {
  file: string;
  label: string;
  predicted: string;
  /** Probability of `predicted`. */
  score: number;
  /** Whether the version's outlier detector called it unknown; null without a detector. */
  unknown: boolean | null;
}

interface Scored {
  file: LabelledFile;
  probs: number[];
  /** What the version's outlier detector said; null without one. */
  unknown: boolean | null;
}

const MAX_BATCH = 16;

/** Request bytes of one image in `{"images": [...]}`: base64 plus quotes and comma. */
const encodedSize = (bytes: number) => 4 * Math.ceil(bytes / 3) + 3;

/** Batches of at most 16 images whose JSON body stays under the API's limit; an image too big for any batch alone. */
function pack(files: LabelledFile[], maxBodyBytes: number): LabelledFile[][] {
  const budget = maxBodyBytes - 64;
  const batches: LabelledFile[][] = [];
  let current: LabelledFile[] = [];
  let used = 0;
  for (const f of files) {
    const size = encodedSize(f.size);
    if (current.length > 0 && (current.length === MAX_BATCH || used + size > budget)) {
      batches.push(current);
      current = [];
      used = 0;
    }
    current.push(f);
    used += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Scores of every label for one image, in model order. */
function row(predictions: Prediction[], labels: string[]): number[] {
  const r = new Array<number>(labels.length).fill(0);
  for (const p of predictions) r[labels.indexOf(p.label)] = p.score;
  return r;
}

/** One image alone through /predict (raw body, no base64): how a batch that failed as a whole is pinned down. */
async function scoreAlone(ctx: EvalContext, f: LabelledFile): Promise<void> {
  try {
    const res = await predictOne(ctx.target, ctx.project, f.path, ctx.labels.length);
    ctx.scored.push({ file: f, probs: row(res.predictions, ctx.labels), unknown: res.unknown ?? null });
  } catch (err) {
    ctx.failed.push({ file: f.path, ...fileError(err) });
  }
}

interface EvalContext {
  target: Target;
  project: string;
  labels: string[];
  scored: Scored[];
  failed: EvalReport['failed'];
}

async function scoreBatch(ctx: EvalContext, batch: LabelledFile[]): Promise<void> {
  if (batch.length === 1) return scoreAlone(ctx, batch[0]!);
  const images: string[] = [];
  try {
    for (const f of batch) images.push(readFileSync(f.path).toString('base64'));
  } catch {
    // One file went away or cannot be read: each on its own says which.
    for (const f of batch) await scoreAlone(ctx, f);
    return;
  }
  let res: {
    results: (
      | { index: number; predictions: Prediction[]; unknown?: boolean | null }
      | { index: number; error: FileError }
    )[];
  };
  try {
    res = (await call(
      ctx.target,
      `/v1/projects/${encodeURIComponent(ctx.project)}/predict/batch?topK=${ctx.labels.length}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images }),
      },
    )) as typeof res;
  } catch (err) {
    fileError(err); // rethrows what concerns every request
    for (const f of batch) await scoreAlone(ctx, f);
    return;
  }
  for (const r of res.results) {
    const f = batch[r.index]!;
    if ('error' in r) ctx.failed.push({ file: f.path, code: r.error.code, message: r.error.message });
    else ctx.scored.push({ file: f, probs: row(r.predictions, ctx.labels), unknown: r.unknown ?? null });
  }
}

/** Sorts the folder into images to score, files skipped by design, and files that cannot be scored. */
function triage(files: LabelledFile[], labels: string[], maxBodyBytes: number) {
  const toScore: LabelledFile[] = [];
  const skipped: EvalReport['skipped'] = [];
  const failed: EvalReport['failed'] = [];
  for (const f of files) {
    if (f.refusal) failed.push({ file: f.path, ...f.refusal });
    else if (basename(f.path).startsWith('.')) skipped.push({ file: f.path, reason: 'hidden file' });
    else if (!f.label) skipped.push({ file: f.path, reason: 'not in a label folder' });
    else if (!labels.includes(f.label))
      skipped.push({ file: f.path, reason: `label '${f.label}' is not in the model` });
    else if (f.size > maxBodyBytes) {
      const p = tooLargeForApi(f.size, maxBodyBytes);
      failed.push({ file: f.path, code: p.code, message: p.message });
    } else toScore.push(f);
  }
  return { toScore, skipped, failed };
}

/**
 * Scores the current model on a labelled folder that never enters training: each image goes through the
 * prediction API exactly as an app's would, in batches. One bad image never stops the others: a batch the API
 * refuses as a whole (413, 400) is retried image by image, and each image that still fails is listed.
 */
export async function evaluateDirectory(options: {
  target: Target;
  project: string;
  dir: string;
}): Promise<EvalReport> {
  const { target, project, dir } = options;
  const model = (await call(target, `/v1/projects/${encodeURIComponent(project)}/model`, {
    method: 'GET',
  })) as { version: string; labels: string[] };
  const { labels } = model;
  const maxBody = target.env.HEADSTART_MAX_BODY_BYTES;
  const { toScore, skipped, failed } = triage(listLabelledFiles(dir), labels, maxBody);
  if (toScore.length === 0 && failed.length === 0)
    throw new CliError(`no image in ${dir} has a label the model knows (${labels.join(', ')})`);
  const ctx: EvalContext = { target, project, labels, scored: [], failed };
  for (const batch of pack(toScore, maxBody)) await scoreBatch(ctx, batch);
  ctx.scored.sort((a, b) => a.file.path.localeCompare(b.file.path));
  failed.sort((a, b) => a.file.localeCompare(b.file));
  return evalReport({
    project,
    version: model.version,
    labels,
    scored: ctx.scored.map((s) => ({ ...s, file: s.file.path, label: s.file.label })),
    skipped,
    failed,
  });
}

/** One scored example: the probabilities over the model's labels that the API answered for it. */
export interface ScoredExample {
  file: string;
  label: string;
  probs: number[];
  /** What the version's outlier detector said; null without one. */
  unknown: boolean | null;
}

/** The report of a labelled set scored through the API (photos or texts), from each example's probabilities. */
export function evalReport(o: {
  project: string;
  version: string;
  labels: string[];
  scored: ScoredExample[];
  skipped: EvalReport['skipped'];
  failed: EvalReport['failed'];
}): EvalReport {
  const { labels, scored } = o;
  const m = computeMetrics(
    scored.map((s) => labels.indexOf(s.label)),
    Float32Array.from(scored.flatMap((s) => s.probs)),
    labels,
  );
  // Training's metrics average over every label; here a label with no example in the set says nothing.
  const present = m.perLabel.filter((p) => p.support > 0);
  return {
    project: o.project,
    version: o.version,
    n: m.n,
    accuracy: m.n === 0 ? null : m.accuracy,
    macroF1: present.length === 0 ? null : present.reduce((a, p) => a + p.f1, 0) / present.length,
    perLabel: m.perLabel,
    confusion: m.confusion,
    labels,
    labelsNotInFolder: m.perLabel.filter((p) => p.support === 0).map((p) => p.label),
    unknownRate:
      scored.length === 0 || scored.some((s) => s.unknown === null)
        ? null
        : scored.filter((s) => s.unknown).length / scored.length,
    skipped: o.skipped,
    failed: o.failed,
    examples: scored.map((s) => exampleOf(s, labels)),
  };
}

function exampleOf(s: ScoredExample, labels: string[]): EvalExample {
  const p = argmaxRow(s.probs, 0, labels.length);
  return { file: s.file, label: s.label, predicted: labels[p]!, score: s.probs[p]!, unknown: s.unknown };
}

export function formatEval(r: EvalReport, dir: string, noun = 'images'): string {
  const score = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  const lines = [
    `${r.project} ${r.version}: accuracy ${score(r.accuracy)}, macro-F1 ${score(r.macroF1)} on ${r.n} ${noun}${r.failed.length ? `; ${r.failed.length} failed` : ''}`,
  ];
  for (const p of r.perLabel) {
    if (p.support === 0) continue;
    lines.push(
      `  ${p.label.padEnd(20)} precision ${p.precision.toFixed(3)}  recall ${p.recall.toFixed(3)}  support ${p.support}`,
    );
  }
  if (r.labelsNotInFolder.length)
    lines.push(`not in the folder (left out of macro-F1): ${r.labelsNotInFolder.join(', ')}`);
  if (r.skipped.length)
    lines.push(
      `skipped ${r.skipped.length}: ${r.skipped.map((s) => `${relative(dir, s.file)} (${s.reason})`).join(', ')}`,
    );
  if (r.failed.length) lines.push(`failed ${r.failed.length}:`);
  for (const f of r.failed) lines.push(`  ${relative(dir, f.file)}: ${f.code}: ${f.message}`);
  return lines.join('\n');
}
