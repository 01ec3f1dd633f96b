/**
 * Accuracy with error bars: Headstart's head trainer against a tuned scikit-learn logistic regression on the same
 * features, in the same run, over at least 5 folds or seeds per dataset. Prints JSON lines via bench-util's `emit`.
 *
 *   npx tsx bench/accuracy-bench.ts [--backbone <id> [--store <dir>]] [--flip] [--study] [--datasets a,b]
 *
 * Datasets (built from this machine, never committed; see accuracy-datasets.ts for licences):
 * - clothing-small: train + validation pooled, 5 stratified folds hold out 1/5 each; the fixed test split once.
 * - clothing-32px: every photo downscaled to 32 x 32 (PNG), decoded back up to the backbone's input; per seed,
 *   100 random training photos per label from train + validation, scored on the fixed test split.
 * - digits: scikit-learn's 1,797 8x8 digits rendered to PNG and upscaled; 5 stratified folds.
 * The trainer is trainHead with its defaults and a hash validation split, as ProjectTrainer calls it (head-only:
 * fine-tuning takes minutes per run and is left out). The reference tunes C on that same validation split
 * ("split") and by 5-fold CV of the same training rows ("cv"); both refit on all training rows.
 * --mid-size N: nsfwjs' 1.4-wide MobileNetV2 at N px instead of the default. --reference-only: the reference
 * alone (to compare features cheaply); --quick: its C tuned on the split only, over 4 values. --skip-reference: the trainer only (with --study: only the study), e.g. to iterate on the trainer. --flip: mirrored photos join training (validation photos excluded, as ProjectTrainer does) and test
 * probabilities average the plain and mirrored view. --study: ablations of the trainer's choices on each run
 * (--variants a,b: only the variants whose names contain one of these).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type Backbone,
  buildDefaultBackbone,
  buildMidBackbone,
  calibrationPhotosDir,
  defaultBackboneId,
  loadBackbone,
  midBackboneId,
  readBackbone,
} from '../shared/backbone/index.js';
import { decodeImage } from '../shared/image/index.js';
import { gateOnValidation, MAX_FLIP_SHARE, UNSURE_FLIP_BELOW } from '../shared/pipeline/project-settings.js';
import { createFsStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import {
  createRng,
  loadHead,
  shuffleInPlace,
  splitByHash,
  type TrainOptions,
  trainHead,
} from '../shared/train/index.js';
import { cachedBackbonePackage } from '../test/support/test-backbone.js';
import { type Dataset, type DatasetName, datasetFeatures, loadDataset } from './accuracy-datasets.js';
import { emit, readBytes, repoRoot } from './bench-util.js';

const calibrationFiles = () =>
  readdirSync(calibrationPhotosDir(), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) =>
      readdirSync(join(calibrationPhotosDir(), d.name)).map((f) => join(calibrationPhotosDir(), d.name, f)),
    );

const { values: argv } = parseArgs({
  options: {
    backbone: { type: 'string' },
    store: { type: 'string', default: join(repoRoot, '.headstart', 'store') },
    flip: { type: 'boolean', default: false },
    study: { type: 'boolean', default: false },
    'skip-reference': { type: 'boolean', default: false },
    'reference-only': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    datasets: { type: 'string', default: 'clothing-small,clothing-32px,digits' },
    seeds: { type: 'string', default: '5' },
    'mid-size': { type: 'string' },
    variants: { type: 'string' },
  },
});
const CACHE_DIR = join(repoRoot, 'bench', '.cache');
const REFERENCE_CS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1, 3, 10];
/** --quick: the Cs the split chose on every run so far, and no cross-validated tuning. */
const QUICK_CS = [1e-3, 3e-3, 1e-2, 3e-2];
const SEEDS = Number(argv.seeds);

function log(line: string): void {
  process.stderr.write(`[accuracy-bench] ${line}\n`);
}

/** --mid-size N: nsfwjs' 1.4-wide MobileNetV2 at N px, built here (fidelity on the calibration photos at N). */
async function midBackboneAt(size: number): Promise<Backbone> {
  const id = midBackboneId({ inputSize: size });
  const pkg = await cachedBackbonePackage(id, async () => {
    const photos = await Promise.all(
      calibrationFiles().map(async (f) => (await decodeImage(readBytes(f), { size })).data),
    );
    return (await buildMidBackbone({ fidelityImages: photos, inputSize: size })).pkg;
  });
  return loadBackbone(pkg);
}

async function openBackbone(): Promise<Backbone> {
  if (argv['mid-size']) return midBackboneAt(Number(argv['mid-size']));
  const id = argv.backbone ?? defaultBackboneId();
  const pkg =
    id === defaultBackboneId()
      ? await cachedBackbonePackage(
          id,
          async (fidelityImages) => (await buildDefaultBackbone({ fidelityImages })).pkg,
        )
      : await readBackbone(createFsStore({ root: argv.store! }), id);
  return loadBackbone(pkg);
}

/** One train/test assignment of a dataset's rows. */
interface Run {
  name: string;
  train: number[];
  test: number[];
}

function stratifiedFolds(rows: number[], labels: Int32Array, folds: number, seed: number): number[][] {
  const rng = createRng(seed);
  const out: number[][] = Array.from({ length: folds }, () => []);
  const byLabel = new Map<number, number[]>();
  for (const r of rows) byLabel.set(labels[r]!, [...(byLabel.get(labels[r]!) ?? []), r]);
  let next = 0;
  for (const members of [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])) {
    for (const r of shuffleInPlace([...members], rng)) out[next++ % folds]!.push(r);
  }
  return out.map((f) => f.sort((a, b) => a - b));
}

function runsOf(dataset: Dataset, labels: Int32Array): Run[] {
  const pool = dataset.items.flatMap((it, i) => (it.part === 'pool' ? [i] : []));
  const test = dataset.items.flatMap((it, i) => (it.part === 'test' ? [i] : []));
  if (dataset.name === 'clothing-32px') {
    return Array.from({ length: SEEDS }, (_, s) => {
      const rng = createRng(1000 + s);
      const byLabel = new Map<number, number[]>();
      for (const r of pool) byLabel.set(labels[r]!, [...(byLabel.get(labels[r]!) ?? []), r]);
      const train = [...byLabel.values()].flatMap((m) => shuffleInPlace([...m], rng).slice(0, 100));
      return { name: `seed${s}`, train: train.sort((a, b) => a - b), test };
    });
  }
  const folds = stratifiedFolds(pool, labels, SEEDS, 7);
  return folds.map((held, f) => ({
    name: `fold${f}`,
    train: pool.filter((r) => !held.includes(r)),
    test: held,
  }));
}

interface Views {
  dim: number;
  plain: Float32Array;
  flip: Float32Array | undefined;
}

function rowsOf(all: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    out.set(all.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
}

/** The training rows as ProjectTrainer hands them to trainHead: hash split, views of training photos appended. */
function trainerInput(run: Run, views: Views, labels: Int32Array, names: string[], labelNames: string[]) {
  const ids = run.train.map((r) => createHash('sha256').update(names[r]!).digest('hex'));
  const y = run.train.map((r) => labels[r]!);
  const split = splitByHash(ids, y);
  const validationIds = split.validation.map((i) => ids[i]!);
  const flipRows = views.flip ? split.train : [];
  const features = new Float32Array((run.train.length + flipRows.length) * views.dim);
  features.set(rowsOf(views.plain, views.dim, run.train));
  if (views.flip) {
    features.set(
      rowsOf(
        views.flip,
        views.dim,
        flipRows.map((i) => run.train[i]!),
      ),
      run.train.length * views.dim,
    );
  }
  return {
    input: {
      features,
      dim: views.dim,
      labels: [...y, ...flipRows.map((i) => y[i]!)],
      labelNames,
      ids: [...ids, ...flipRows.map((i) => `${ids[i]}.hflip`)],
    },
    validationIds,
    isValidation: split.validation,
    flipRows,
  };
}

/** A trainer run's test accuracy (flip-averaged with --flip), and with --flip each way of serving it. */
interface TrainerOutcome {
  accuracy: number;
  config: string;
  seconds: number;
  flip?: { below: number; single: number; gated: number; mirroredShare: number };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let c = 1; c < row.length; c++) if (row[c]! > row[best]!) best = c;
  return best;
}

async function trainerAccuracy(
  run: Run,
  views: Views,
  labels: Int32Array,
  names: string[],
  labelNames: string[],
  options: TrainOptions = {},
): Promise<TrainerOutcome> {
  const { input, validationIds } = trainerInput(run, views, labels, names, labelNames);
  const started = performance.now();
  const result = await trainHead(input, { ...options, validationIds });
  const seconds = (performance.now() - started) / 1000;
  const head = await loadHead(result.head);
  try {
    const k = labelNames.length;
    const single = head.predict(rowsOf(views.plain, views.dim, run.test), run.test.length);
    const mirror = views.flip && head.predict(rowsOf(views.flip, views.dim, run.test), run.test.length);
    const accuracyOf = (p: Float32Array) =>
      run.test.filter((r, i) => argmax(p.subarray(i * k, (i + 1) * k)) === labels[r]).length /
      run.test.length;
    const c = result.config;
    const how = (c as { selection?: string }).selection ?? 'split';
    const config = `${c.headType} l2=${c.l2} epochs=${c.epochs} by ${how}`;
    if (!mirror) return { accuracy: accuracyOf(single), config, seconds };
    const all = single.map((v, i) => (v + mirror[i]!) / 2);
    // The serving default: mirrored only where the single view's top score is under the version's flipBelow,
    // UNSURE_FLIP_BELOW lowered as training lowers it (gateOnValidation, on the split head's validation photos).
    const { serving } = gateOnValidation(
      { flip: true, flipBelow: UNSURE_FLIP_BELOW },
      { probs: result.validationPredictions.probs, labels: k, maxShare: MAX_FLIP_SHARE },
    );
    const below = serving.flipBelow!;
    const unsure = run.test.map((_, i) => Math.max(...single.subarray(i * k, (i + 1) * k)) < below);
    const gated = single.map((v, i) => (unsure[Math.floor(i / k)] ? all[i]! : v));
    const flip = {
      below,
      single: accuracyOf(single),
      gated: accuracyOf(gated),
      mirroredShare: unsure.filter(Boolean).length / unsure.length,
    };
    return { accuracy: accuracyOf(all), config, seconds, flip };
  } finally {
    head.dispose();
  }
}

const sklearnPython = () =>
  ['/usr/bin/python3', 'python3'].find(
    (p) => spawnSync(p, ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0,
  );

async function referenceAccuracy(
  runs: Run[],
  views: Views,
  labels: Int32Array,
  names: string[],
  labelNames: string[],
): Promise<{ split: number[]; cv: number[]; cs: string[] }> {
  const python = sklearnPython();
  if (!python) throw new Error('no python with scikit-learn (Debian: apt-get install python3-sklearn)');
  const dir = await mkdtemp(join(tmpdir(), 'accuracy-bench-'));
  try {
    const meta = {
      dim: views.dim,
      cs: argv.quick ? QUICK_CS : REFERENCE_CS,
      cv: !argv.quick,
      runs: [] as unknown[],
    };
    for (const run of runs) {
      const { input, isValidation, flipRows } = trainerInput(run, views, labels, names, labelNames);
      const val = new Uint8Array(input.ids.length);
      for (const i of isValidation) val[i] = 1;
      const group = Int32Array.from([...run.train.map((_, i) => i), ...flipRows]);
      const base = join(dir, run.name);
      await writeFile(`${base}.train.f32`, input.features);
      await writeFile(`${base}.train.labels`, Int32Array.from(input.labels));
      await writeFile(`${base}.train.val`, val);
      await writeFile(`${base}.train.group`, group);
      await writeFile(`${base}.test.f32`, rowsOf(views.plain, views.dim, run.test));
      if (views.flip) await writeFile(`${base}.test_flip.f32`, rowsOf(views.flip, views.dim, run.test));
      await writeFile(
        `${base}.test.labels`,
        Int32Array.from(run.test, (r) => labels[r]!),
      );
      meta.runs.push({
        name: run.name,
        n_train: input.ids.length,
        n_test: run.test.length,
        flip: !!views.flip,
      });
    }
    await writeFile(join(dir, 'runs.json'), JSON.stringify(meta));
    const out = spawnSync(python, [join(repoRoot, 'bench', 'sklearn-accuracy.py'), dir], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (out.status !== 0) throw new Error(`sklearn reference failed: ${out.stderr}`);
    const parsed = JSON.parse(out.stdout) as {
      runs: { split: { C: number; test_accuracy: number }; cv: { C: number; test_accuracy: number } }[];
    };
    return {
      split: parsed.runs.map((r) => r.split.test_accuracy),
      cv: parsed.runs.map((r) => r.cv.test_accuracy),
      cs: parsed.runs.map((r) => `split C=${r.split.C}, cv C=${r.cv.C}`),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function stats(values: number[]) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1));
  return { mean, std, min: Math.min(...values), max: Math.max(...values) };
}

const round = (v: number) => Number(v.toFixed(4));

/** Trainer variants for --study: each changes one choice of the single-split search (the search before CV). */
const SPLIT: TrainOptions = { crossValidate: 'never' };
const SOFTMAX: TrainOptions = { headTypes: ['softmax'] };
const STUDY: Record<string, TrainOptions> = {
  'split, softmax only, by loss': { ...SPLIT, ...SOFTMAX },
  'split, softmax only, by accuracy': { ...SPLIT, ...SOFTMAX, selectBy: 'accuracy' },
  'split, softmax only, no refit': { ...SPLIT, ...SOFTMAX, refit: false },
  'split, softmax only, no class weights': { ...SPLIT, ...SOFTMAX, classWeight: 'none' },
  'split, softmax only, square-root class weights': { ...SPLIT, ...SOFTMAX, classWeight: 'sqrt' },
  'CV, softmax only, by loss': { crossValidate: 'always', ...SOFTMAX },
  'CV, softmax only, by accuracy': { crossValidate: 'always', ...SOFTMAX, selectBy: 'accuracy' },
};

async function benchDataset(name: DatasetName, backbone: Backbone): Promise<void> {
  const dataset = await loadDataset(name);
  if (!dataset) {
    emit(`${name}_trainer_accuracy_mean`, null, 'ratio', { note: 'dataset not on this machine' });
    return;
  }
  const labelNames = [...new Set(dataset.items.map((it) => it.label))].sort();
  const labels = Int32Array.from(dataset.items, (it) => labelNames.indexOf(it.label));
  const names = dataset.items.map((it) => it.name);
  const feats = await datasetFeatures({ dataset, backbone, view: 'identity', cacheDir: CACHE_DIR, log });
  const flip = argv.flip
    ? (await datasetFeatures({ dataset, backbone, view: 'hflip', cacheDir: CACHE_DIR, log })).features
    : undefined;
  const views: Views = { dim: feats.dim, plain: feats.features, flip };
  const runs = runsOf(dataset, labels);
  const extras = dataset.name === 'clothing-small' ? [fixedTestRun(dataset)] : [];
  const common = { backbone: backbone.manifest.id, flip: argv.flip, licence: dataset.licence };

  if (argv.study && argv['skip-reference']) return study(name, runs, views, labels, names, labelNames);
  if (argv['reference-only'])
    return referenceOnly(name, [...runs, ...extras], views, labels, names, labelNames);
  const trainer: number[] = [];
  const splitOnly: number[] = [];
  const flips: NonNullable<TrainerOutcome['flip']>[] = [];
  for (const run of [...runs, ...extras]) {
    const r = await trainerAccuracy(run, views, labels, names, labelNames);
    log(`${name} ${run.name}: trainer ${r.accuracy.toFixed(4)} (${r.config}, ${r.seconds.toFixed(1)} s)`);
    if (r.flip) {
      const { single, gated, mirroredShare, below } = r.flip;
      log(
        `${name} ${run.name}: one view ${single.toFixed(4)}, mirrored under ${below.toFixed(3)} ${gated.toFixed(4)} (${(100 * mirroredShare).toFixed(1)}% of test photos)`,
      );
    }
    trainer.push(r.accuracy);
    if (r.flip) flips.push(r.flip);
    // The search as it was before cross-validation (issue 14), in the same run: the before/after of the fix.
    const old = await trainerAccuracy(run, views, labels, names, labelNames, SPLIT);
    log(`${name} ${run.name}: single-split trainer ${old.accuracy.toFixed(4)} (${old.config})`);
    splitOnly.push(old.accuracy);
  }
  const n = runs.length;
  if (flips.length > 0) emitServedAs(name, flips.slice(0, n));
  const t = stats(trainer.slice(0, n));
  const s = stats(splitOnly.slice(0, n));
  emit(`${name}_single_split_trainer_accuracy_mean`, s.mean, 'ratio', {
    std: round(s.std),
    min: round(s.min),
    max: round(s.max),
    per_run: splitOnly.slice(0, n).map(round),
    note: "trainHead with crossValidate: 'never', the search before issue 14",
  });
  if (argv['skip-reference']) {
    emit(`${name}_trainer_accuracy_mean`, t.mean, 'ratio', {
      ...common,
      std: round(t.std),
      per_run: trainer.map(round),
    });
    return;
  }
  const reference = await referenceAccuracy([...runs, ...extras], views, labels, names, labelNames);
  const cv = stats(reference.cv.slice(0, n));
  const split = stats(reference.split.slice(0, n));
  emit(`${name}_trainer_accuracy_mean`, t.mean, 'ratio', {
    ...common,
    std: round(t.std),
    min: round(t.min),
    max: round(t.max),
    per_run: trainer.slice(0, n).map(round),
    protocol: name === 'clothing-32px' ? `${n} seeds of 100/label, fixed test` : `${n} stratified folds`,
  });
  emit(`${name}_reference_cv_accuracy_mean`, cv.mean, 'ratio', {
    std: round(cv.std),
    min: round(cv.min),
    max: round(cv.max),
    per_run: reference.cv.slice(0, n).map(round),
    note: 'sklearn LogisticRegression, C by 5-fold CV of the training rows',
  });
  emit(`${name}_reference_split_accuracy_mean`, split.mean, 'ratio', {
    std: round(split.std),
    per_run: reference.split.slice(0, n).map(round),
    note: "sklearn LogisticRegression, C on the trainer's validation split",
    cs: reference.cs.slice(0, n),
  });
  const best = Math.max(cv.mean, split.mean);
  emit(`${name}_trainer_minus_reference`, t.mean - best, 'ratio', {
    trainer_ge_reference: t.mean >= best,
    note: 'trainer mean minus the better reference mean',
  });
  if (extras.length > 0) {
    emit(`${name}_fixed_test_trainer_accuracy`, trainer[n]!, 'ratio', {
      single_split_trainer: round(splitOnly[n]!),
      reference_cv: round(reference.cv[n]!),
      reference_split: round(reference.split[n]!),
      note: 'train + validation, fixed test split (372 photos: one photo = 0.27 points)',
    });
  }
  if (argv.study) await study(name, runs, views, labels, names, labelNames);
}

/** --flip: the trainer's test accuracy served as one view, mirrored when unsure (the default) and always. */
function emitServedAs(name: string, flips: NonNullable<TrainerOutcome['flip']>[]): void {
  const of = (pick: (f: (typeof flips)[number]) => number) => {
    const s = stats(flips.map(pick));
    return { mean: round(s.mean), std: round(s.std) };
  };
  emit(`${name}_trainer_served_unsure_accuracy_mean`, of((f) => f.gated).mean, 'ratio', {
    std: of((f) => f.gated).std,
    flipBelow: { requested: UNSURE_FLIP_BELOW, maxShare: MAX_FLIP_SHARE, version: of((f) => f.below) },
    mirroredShare: of((f) => f.mirroredShare),
    oneView: of((f) => f.single),
    note: "mirrored where the one view scores under the version's flipBelow; the trainer_accuracy line mirrors every photo",
  });
}

/** --reference-only: the reference alone, to compare backbones' features (cut, input size) cheaply. */
async function referenceOnly(
  name: string,
  runs: Run[],
  views: Views,
  labels: Int32Array,
  names: string[],
  labelNames: string[],
): Promise<void> {
  const reference = await referenceAccuracy(runs, views, labels, names, labelNames);
  const n = name === 'clothing-small' ? runs.length - 1 : runs.length;
  for (const kind of ['cv', 'split'] as const) {
    const r = stats(reference[kind].slice(0, n));
    emit(`${name}_reference_${kind}_accuracy_mean`, r.mean, 'ratio', {
      std: round(r.std),
      per_run: reference[kind].slice(0, n).map(round),
      ...(n < runs.length ? { fixed_test: round(reference[kind][n]!) } : {}),
    });
  }
}

async function study(
  name: string,
  runs: Run[],
  views: Views,
  labels: Int32Array,
  names: string[],
  labelNames: string[],
): Promise<void> {
  const wanted = argv.variants?.split(',');
  const chosen = Object.entries(STUDY).filter(([v]) => !wanted || wanted.some((w) => v.includes(w)));
  for (const [variant, options] of chosen) {
    const values: number[] = [];
    const configs: string[] = [];
    for (const run of runs) {
      const r = await trainerAccuracy(run, views, labels, names, labelNames, options);
      values.push(r.accuracy);
      configs.push(r.config);
    }
    const s = stats(values);
    emit(`${name}_study_accuracy_mean`, s.mean, 'ratio', {
      variant,
      std: round(s.std),
      per_run: values.map(round),
      configs,
    });
  }
}

function fixedTestRun(dataset: Dataset): Run {
  return {
    name: 'fixed-test',
    train: dataset.items.flatMap((it, i) => (it.part === 'pool' ? [i] : [])),
    test: dataset.items.flatMap((it, i) => (it.part === 'test' ? [i] : [])),
  };
}

await initTf({ backend: 'wasm' });
const backbone = await openBackbone();
try {
  for (const name of argv.datasets!.split(',') as DatasetName[]) await benchDataset(name, backbone);
} finally {
  backbone.dispose();
}
