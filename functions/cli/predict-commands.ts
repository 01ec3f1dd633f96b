import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { computeMetrics, type Metrics } from '../../shared/train/index.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';
import { listLabelledFiles } from './upload-command.js';

interface Prediction {
  label: string;
  score: number;
}

const TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

async function call(target: Target, path: string, init: RequestInit): Promise<unknown> {
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
  if (!res.ok)
    throw new CliError(`${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? res.statusText}`);
  return body;
}

export async function predictFiles(target: Target, project: string, files: string[], topK = 3) {
  const out: { file: string; predictions: Prediction[]; version: string }[] = [];
  for (const file of files) {
    const bytes = readFileSync(file);
    const type = TYPES[file.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
    const res = (await call(target, `/v1/projects/${encodeURIComponent(project)}/predict?topK=${topK}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: bytes,
    })) as { predictions: Prediction[]; model: { version: string } };
    out.push({ file, predictions: res.predictions, version: res.model.version });
  }
  return out;
}

export interface EvalReport {
  project: string;
  version: string;
  n: number;
  accuracy: number;
  macroF1: number;
  perLabel: Metrics['perLabel'];
  confusion: number[][];
  labels: string[];
  /** Images of labels the model does not know, or that the API refused: not scored. */
  skipped: { file: string; reason: string }[];
}

/**
 * Scores the current model on a labelled folder that never enters training: each image goes through the
 * prediction API exactly as an app's would, in batches of 16.
 */
export async function evaluateDirectory(target: Target, project: string, dir: string): Promise<EvalReport> {
  const model = (await call(target, `/v1/projects/${encodeURIComponent(project)}/model`, {
    method: 'GET',
  })) as {
    version: string;
    labels: string[];
  };
  const files = listLabelledFiles(dir);
  const skipped: { file: string; reason: string }[] = [];
  const scored = files.filter((f) => {
    if (model.labels.includes(f.label)) return true;
    skipped.push({
      file: f.path,
      reason: f.label ? `label '${f.label}' is not in the model` : 'not in a label folder',
    });
    return false;
  });
  const k = model.labels.length;
  const probs: number[] = [];
  const truth: number[] = [];
  for (let i = 0; i < scored.length; i += 16) {
    const chunk = scored.slice(i, i + 16);
    const res = (await call(target, `/v1/projects/${encodeURIComponent(project)}/predict/batch?topK=${k}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ images: chunk.map((f) => readFileSync(f.path).toString('base64')) }),
    })) as {
      results: (
        | { index: number; predictions: Prediction[] }
        | { index: number; error: { message: string } }
      )[];
    };
    for (const r of res.results) {
      const f = chunk[r.index]!;
      if ('error' in r) {
        skipped.push({ file: f.path, reason: r.error.message });
        continue;
      }
      const row = new Array<number>(k).fill(0);
      for (const p of r.predictions) row[model.labels.indexOf(p.label)] = p.score;
      probs.push(...row);
      truth.push(model.labels.indexOf(f.label));
    }
  }
  if (truth.length === 0)
    throw new CliError(`no image in ${dir} has a label the model knows (${model.labels.join(', ')})`);
  const m = computeMetrics(truth, Float32Array.from(probs), model.labels);
  return {
    project,
    version: model.version,
    n: m.n,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    perLabel: m.perLabel,
    confusion: m.confusion,
    labels: model.labels,
    skipped,
  };
}

export function formatEval(r: EvalReport): string {
  const lines = [
    `${r.project} ${r.version}: accuracy ${r.accuracy.toFixed(3)}, macro-F1 ${r.macroF1.toFixed(3)} on ${r.n} images`,
  ];
  r.perLabel.forEach((p) => {
    lines.push(
      `  ${p.label.padEnd(20)} precision ${p.precision.toFixed(3)}  recall ${p.recall.toFixed(3)}  support ${p.support}`,
    );
  });
  if (r.skipped.length)
    lines.push(
      `skipped ${r.skipped.length}: ${r.skipped.map((s) => `${basename(s.file)} (${s.reason})`).join(', ')}`,
    );
  return lines.join('\n');
}
