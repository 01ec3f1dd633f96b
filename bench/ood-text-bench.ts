// npm run bench:ood:text [-- --skip-head] [--rotations N] [--per-intent N]: how well each outlier detector (the
// head's own probabilities, `msp`, and each fitted input and method) tells
// texts of banking77 intents never trained on from texts of the trained ones (../shared/datasets/banking77: fit
// on 69 intents, the test texts of the 8 held out are out-of-distribution), rotating the held-out group; far-off
// checks on English sentences that are not about banking (README files of the packages in node_modules), on
// random dictionary words and on gibberish; the threshold's accepted rate on unseen in-distribution texts; and
// what the chosen detector adds to a prediction and to a training.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  acceptedRate,
  auroc,
  calibrateOutlierDetector,
  calibrateSoftmaxForTraining,
  createSoftmaxOutlierDetector,
  encodeOutlierDetector,
  fitOutlierDetector,
  fprAt95Tpr,
  type OutlierMethod,
  type SketchSpec,
  sketchedDim,
  sketchSparseRows,
  softmaxScores,
  TEXT_OUTLIER,
  textSketch,
} from '../shared/outlier/index.js';
import { densify, type SparseFeature, stackFeatures } from '../shared/text/sentence-features.js';
import {
  buildTextBackbone,
  DEFAULT_TEXT_VOCABULARY,
  type TextBackbone,
} from '../shared/text/text-backbone.js';
import { WINK_SOURCE_ID, winkVectors } from '../shared/text/wink-package.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { type Head, loadHead, trainHead } from '../shared/train/index.js';
import { createRng } from '../shared/train/numerics.js';
import { type Banking77Row, readBanking77 } from './banking77-rows.js';
import { emit, percentile, repoRoot } from './bench-util.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ROTATIONS = Number(arg('--rotations') ?? 5);
const GROUP = 8;

type Row = Banking77Row;

/** What the detector reads of a feature: `keep` leading columns and `sketch` hashed ones (see outlier-sketch.ts). */
interface Input {
  name: string;
  keep: 'dense' | 0;
  sketch: number;
}
const INPUTS: Input[] = [
  { name: 'dense', keep: 'dense', sketch: 0 },
  { name: 'dense+s64', keep: 'dense', sketch: 64 },
  { name: 'dense+s256', keep: 'dense', sketch: 256 },
];

interface Candidate {
  name: string;
  input: string;
  method: OutlierMethod;
  components: number;
  maxNeighbours?: number;
}
const candidate = (
  input: string,
  method: OutlierMethod,
  components: number,
  maxNeighbours?: number,
): Candidate => ({
  name: `${input}.${method}-k${components}${maxNeighbours ? `-n${maxNeighbours}` : ''}`,
  input,
  method,
  components,
  ...(maxNeighbours ? { maxNeighbours } : {}),
});
const ALL_CANDIDATES: Candidate[] = [
  candidate('dense', 'knn', 16),
  candidate('dense', 'knn', 32),
  candidate('dense', 'knn', 64),
  candidate('dense', 'knn', 64, 1500),
  candidate('dense', 'knn', 64, 3000),
  candidate('dense', 'relative-mahalanobis', 64),
  candidate('dense', 'mahalanobis+residual', 64),
  candidate('dense', 'combined', 32),
  candidate('dense', 'combined', 64),
  candidate('dense+s64', 'knn', 32),
  candidate('dense+s64', 'relative-mahalanobis', 64),
  candidate('dense+s64', 'mahalanobis+residual', 64),
  candidate('dense+s64', 'combined', 64),
  candidate('dense+s256', 'knn', 64),
  candidate('dense+s256', 'combined', 64),
];
/** The best fitted detector (what text versions used before the head's own probabilities won). */
const FITTED = `${TEXT_OUTLIER.sketch > 0 ? `dense+s${TEXT_OUTLIER.sketch}` : 'dense'}.${TEXT_OUTLIER.method}-k${TEXT_OUTLIER.components}`;
const WITH_HEAD = !flag('--skip-head');
/** What the pipeline stores for a text version: `msp` (needs the head; `--skip-head` reports the fitted one). */
const CHOSEN = WITH_HEAD ? 'msp' : FITTED;
/** `--per-intent N`: fit on at most N training texts per intent (the small-data case). */
const PER_INTENT = Number(arg('--per-intent') ?? Number.POSITIVE_INFINITY);
/** `--only a,b`: just those candidates (and the chosen one), for a quicker run. */
const only = arg('--only')?.split(',');
const CANDIDATES = ALL_CANDIDATES.filter((c) => !only || only.includes(c.name) || c.name === FITTED);

/**
 * English sentences that are not about banking: the README files of the packages installed in node_modules,
 * prose only (no code blocks, tables, headings, links' targets), 6 to 30 words, deduplicated, evenly sampled.
 */
function readmeSentences(max: number): { texts: string[]; files: number } {
  const root = join(repoRoot, 'node_modules');
  const dirs = readdirSync(root)
    .sort()
    .flatMap((d) => (d.startsWith('@') ? readdirSync(join(root, d)).map((s) => join(d, s)) : [d]));
  const seen = new Set<string>();
  let files = 0;
  for (const d of dirs) {
    const readme = safeList(join(root, d)).find((f) => /^readme(\.md)?$/i.test(f));
    if (!readme) continue;
    const path = join(root, d, readme);
    if (!statSync(path).isFile()) continue;
    files++;
    const prose = readFileSync(path, 'utf8')
      .replace(/```[\s\S]*?```/g, ' ')
      .split('\n')
      .filter((l) => !/^\s*([#|<>!-]|\*\s|\d+\.|\[)/.test(l))
      .join(' ')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/`[^`]*`/g, ' ');
    for (const s of prose.split(/(?<=[.!?])\s+/)) {
      const t = s.replace(/\s+/g, ' ').trim();
      const words = t.split(' ');
      if (words.length < 6 || words.length > 30 || /[{}=<>/\\_*]|https?:/.test(t)) continue;
      if (t.replace(/[^A-Za-z]/g, '').length < 0.75 * t.replace(/\s/g, '').length) continue;
      seen.add(t);
    }
  }
  const all = [...seen];
  const step = Math.max(1, all.length / max);
  return {
    texts: Array.from({ length: Math.min(max, all.length) }, (_, i) => all[Math.floor(i * step)]!),
    files,
  };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Eight words drawn at random from the vocabulary's ranks 1,000-50,000: English, but no sentence and no topic. */
function randomWords(words: string[], n: number): string[] {
  const rng = createRng(77);
  return Array.from({ length: n }, () =>
    Array.from({ length: 8 }, () => words[1000 + Math.floor(rng() * (words.length - 1000))]!).join(' '),
  );
}

function gibberish(n: number): string[] {
  const rng = createRng(5);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return Array.from({ length: n }, () =>
    Array.from({ length: 3 + Math.floor(rng() * 8) }, () =>
      Array.from({ length: 2 + Math.floor(rng() * 8) }, () => letters[Math.floor(rng() * 26)]).join(''),
    ).join(' '),
  );
}

async function buildBackbone(): Promise<{ backbone: TextBackbone; words: string[] }> {
  const words: string[] = [];
  async function* source() {
    for await (const w of winkVectors(DEFAULT_TEXT_VOCABULARY)) {
      words.push(w.word);
      yield w;
    }
  }
  const { backbone } = await buildTextBackbone({ source: source(), sourceId: WINK_SOURCE_ID, dim: 100 });
  return { backbone, words };
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function specOf(input: Input, backbone: TextBackbone): SketchSpec {
  const { dim, denseDim } = backbone.featurizer;
  return { inputDim: dim, keep: input.keep === 'dense' ? denseDim : 0, sketch: input.sketch, seed: 1 };
}

/** Head probabilities of sparse features, densified a chunk at a time (a dense row is 66 KB). */
function predictChunks(head: Head, features: readonly SparseFeature[], dim: number): Float32Array {
  const k = head.labels.length;
  const out = new Float32Array(features.length * k);
  for (let at = 0; at < features.length; at += 256) {
    const part = features.slice(at, at + 256);
    const x = new Float32Array(part.length * dim);
    part.forEach((f, i) => {
      densify(f, x, i * dim);
    });
    out.set(head.predict(x, part.length), at * k);
  }
  return out;
}

interface Result {
  auroc: number[];
  fpr: number[];
  readme: number[];
  words: number[];
  gibberish: number[];
}
const empty = (): Result => ({ auroc: [], fpr: [], readme: [], words: [], gibberish: [] });

async function main(): Promise<void> {
  await initTf();
  const train = readBanking77('train.csv');
  const test = readBanking77('test.csv');
  if (train.length === 0) {
    emit('ood_text_near_auroc_mean', null, 'ratio', { note: 'banking77 not found' });
    return;
  }
  const { backbone, words } = await buildBackbone();
  const { featurizer } = backbone;
  const readme = readmeSentences(600);
  const far = { readme: readme.texts, words: randomWords(words, 300), gibberish: gibberish(200) };
  emit('ood_text_far_sources', readme.texts.length, 'sentences', {
    readmeFiles: readme.files,
    source: 'node_modules/*/README*',
    randomWords: far.words.length,
    gibberish: far.gibberish.length,
    example: readme.texts[0],
  });
  const trainF = train.map((r) => featurizer.featurize(r.text));
  const testF = test.map((r) => featurizer.featurize(r.text));
  const farF = {
    readme: far.readme.map((t) => featurizer.featurize(t)),
    words: far.words.map((t) => featurizer.featurize(t)),
    gibberish: far.gibberish.map((t) => featurizer.featurize(t)),
  };
  const intents = [...new Set(train.map((r) => r.label))].sort();
  const results = new Map<string, Result>();
  const sketchOf = (fs: readonly SparseFeature[], spec: SketchSpec) =>
    sketchSparseRows(stackFeatures(fs), spec);
  const timing = { head: [] as number[], calibrate: [] as number[] };
  const accepted: number[] = [];
  for (let r = 0; r < ROTATIONS; r++) {
    // Spread over the sorted intents so a group is not one topic (card_*, top_up_*...).
    const held = new Set(
      Array.from({ length: GROUP }, (_, j) => intents[(r + j * ROTATIONS) % intents.length]!),
    );
    const kept = intents.filter((l) => !held.has(l));
    const perIntent = new Map<string, number>();
    const fit = train.flatMap((row, i) => {
      if (held.has(row.label)) return [];
      const seen = perIntent.get(row.label) ?? 0;
      perIntent.set(row.label, seen + 1);
      return seen < PER_INTENT ? [i] : [];
    });
    const inRows = test.flatMap((row, i) => (held.has(row.label) ? [] : [i]));
    const outRows = test.flatMap((row, i) => (held.has(row.label) ? [i] : []));
    const labels = fit.map((i) => kept.indexOf(train[i]!.label));
    const groups: Record<string, Float32Array[]> = {};
    for (const input of INPUTS) {
      const spec = specOf(input, backbone);
      const x = {
        fit: sketchOf(
          fit.map((i) => trainF[i]!),
          spec,
        ),
        in: sketchOf(
          inRows.map((i) => testF[i]!),
          spec,
        ),
        out: sketchOf(
          outRows.map((i) => testF[i]!),
          spec,
        ),
        readme: sketchOf(farF.readme, spec),
        words: sketchOf(farF.words, spec),
        gibberish: sketchOf(farF.gibberish, spec),
      };
      const dim = sketchedDim(spec);
      for (const c of CANDIDATES.filter((c) => c.input === input.name)) {
        const d = fitOutlierDetector({
          features: x.fit,
          dim,
          labels,
          method: c.method,
          components: c.components,
          ...(c.maxNeighbours ? { maxNeighbours: c.maxNeighbours } : {}),
        });
        const s = (v: Float32Array) => d.score(v, v.length / dim);
        groups[c.name] = [s(x.in), s(x.out), s(x.readme), s(x.words), s(x.gibberish)];
      }
      if (CHOSEN === FITTED && input.name === FITTED.split('.')[0]) {
        // The pipeline's calibration on a validation share of the fit rows, then its accepted rate on the test texts.
        const positions = fit.map((_, j) => j);
        const t0 = performance.now();
        const cal = calibrateOutlierDetector({
          features: x.fit,
          dim,
          labels,
          trainRows: positions.filter((j) => j % 5 !== 0),
          validationRows: positions.filter((j) => j % 5 === 0),
          method: TEXT_OUTLIER.method,
          components: TEXT_OUTLIER.components,
        });
        timing.calibrate.push(performance.now() - t0);
        const d = cal.detector!;
        accepted.push(acceptedRate(d.score(x.in, inRows.length), d.threshold!));
      }
    }
    if (WITH_HEAD) {
      const ids = fit.map((i) => sha(`${i}:${train[i]!.text}`));
      const t0 = performance.now();
      const trained = await trainHead(
        {
          features: new Float32Array(0),
          sparse: stackFeatures(fit.map((i) => trainF[i]!)),
          dim: featurizer.dim,
          labels,
          labelNames: kept,
          ids,
        },
        { validationIds: ids.filter((_, j) => j % 5 === 0) },
      );
      timing.head.push(performance.now() - t0);
      const head = await loadHead(trained.head);
      const k = kept.length;
      const m = (fs: readonly SparseFeature[]) => softmaxScores(predictChunks(head, fs, featurizer.dim), k);
      groups.msp = [
        m(inRows.map((i) => testF[i]!)),
        m(outRows.map((i) => testF[i]!)),
        m(farF.readme),
        m(farF.words),
        m(farF.gibberish),
      ];
      // The pipeline's calibration: the split head's validation texts, then the served (refit) head's scores.
      const t1 = performance.now();
      const cal = calibrateSoftmaxForTraining({
        validation: trained.validationPredictions,
        labels: k,
        inputDim: featurizer.dim,
      });
      timing.calibrate.push(performance.now() - t1);
      accepted.push(acceptedRate(groups.msp[0]!, cal.detector!.threshold!));
      head.dispose();
    }
    for (const [name, [a, b, fr, fw, fg]] of Object.entries(groups)) {
      const res = results.get(name) ?? empty();
      res.auroc.push(auroc(a!, b!));
      res.fpr.push(fprAt95Tpr(a!, b!));
      res.readme.push(auroc(a!, fr!));
      res.words.push(auroc(a!, fw!));
      res.gibberish.push(auroc(a!, fg!));
      results.set(name, res);
    }
    emit('ood_text_rotation', results.get(CHOSEN)!.auroc.at(-1)!, 'auroc', {
      method: CHOSEN,
      held: [...held],
    });
  }
  for (const [name, r] of results) {
    emit(`ood_text_near_auroc_mean.${name}`, mean(r.auroc), 'ratio', {
      fprAt95Tpr: Number(mean(r.fpr).toFixed(4)),
      farReadmeAuroc: Number(mean(r.readme).toFixed(4)),
      farRandomWordsAuroc: Number(mean(r.words).toFixed(4)),
      farGibberishAuroc: Number(mean(r.gibberish).toFixed(4)),
    });
  }
  const chosen = results.get(CHOSEN)!;
  emit('ood_text_near_auroc_mean', mean(chosen.auroc), 'ratio', { method: CHOSEN, rotations: ROTATIONS });
  emit('ood_text_near_fpr_at_95tpr_mean', mean(chosen.fpr), 'ratio', { method: CHOSEN });
  emit('ood_text_far_readme_auroc_mean', mean(chosen.readme), 'ratio', { method: CHOSEN });
  emit('ood_text_far_random_words_auroc_mean', mean(chosen.words), 'ratio', { method: CHOSEN });
  emit('ood_text_far_gibberish_auroc_mean', mean(chosen.gibberish), 'ratio', { method: CHOSEN });
  emit('ood_text_test_accepted_rate_mean', mean(accepted), 'share', {
    note: 'in-distribution test texts under the threshold set on validation to accept 95%',
  });
  await costs({ backbone, trainF, labels: train.map((r) => intents.indexOf(r.label)), test, timing });
}

async function costs(input: {
  backbone: TextBackbone;
  trainF: SparseFeature[];
  labels: number[];
  test: Row[];
  timing: { head: number[]; calibrate: number[] };
}): Promise<void> {
  const { featurizer } = input.backbone;
  const spec = textSketch({ inputDim: featurizer.dim, denseDim: featurizer.denseDim });
  const dim = sketchedDim(spec);
  const positions = input.labels.map((_, j) => j);
  const labels = new Set(input.labels).size;
  const detector =
    CHOSEN === 'msp'
      ? createSoftmaxOutlierDetector({ method: 'msp', dim: featurizer.dim, labels, threshold: 0.5 })
      : calibrateOutlierDetector({
          features: sketchSparseRows(stackFeatures(input.trainF), spec),
          dim,
          labels: input.labels,
          trainRows: positions.filter((j) => j % 5 !== 0),
          validationRows: positions.filter((j) => j % 5 === 0),
          method: TEXT_OUTLIER.method,
          components: TEXT_OUTLIER.components,
          sketch: spec,
        }).detector!;
  const rows = input.test.slice(0, 300).map((r) => densify(featurizer.featurize(r.text)));
  const uniform = new Float32Array(labels).fill(1 / labels);
  const scoreMs: number[] = [];
  const featurizeMs: number[] = [];
  for (const [i, row] of rows.entries()) {
    const t0 = performance.now();
    featurizer.featurize(input.test[i]!.text);
    const t1 = performance.now();
    detector.score(row, 1, uniform);
    scoreMs.push(performance.now() - t1);
    featurizeMs.push(t1 - t0);
  }
  emit('ood_text_score_ms_per_prediction', percentile(scoreMs.slice(50), 50), 'ms', {
    method: CHOSEN,
    p95: Number(percentile(scoreMs.slice(50), 95).toFixed(4)),
    featurizeMsP50: Number(percentile(featurizeMs.slice(50), 50).toFixed(4)),
  });
  const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
  if (input.timing.head.length > 0) {
    emit('ood_text_training_time_ratio', sum(input.timing.calibrate) / sum(input.timing.head), 'ratio', {
      calibrateSecondsMean: Number((mean(input.timing.calibrate) / 1000).toFixed(3)),
      headSecondsMean: Number((mean(input.timing.head) / 1000).toFixed(3)),
    });
  } else {
    emit('ood_text_calibrate_seconds_mean', mean(input.timing.calibrate) / 1000, 's');
  }
  const enc = encodeOutlierDetector(detector);
  emit('ood_text_artifact_bytes', enc.json.length + enc.weights.byteLength, 'bytes', { method: CHOSEN });
}

await main();
