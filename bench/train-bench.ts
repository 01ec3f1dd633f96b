/**
 * Head-training benchmark. Prints JSON lines {"metric", "value", "unit"} on stdout; progress goes to stderr.
 *
 *   npx tsx bench/train-bench.ts [--skip-synthetic] [--skip-cuts] [--skip-reference]
 *
 * 1. Speed: full search + refit on 10,000 synthetic examples of 1,280 features (MobileNetV2 1.0's width) and of
 *    3,264 (the default backbone's), 10 labels (wasm backend), in the same run so their ratio holds.
 * 2. Cut study on /work/shared/datasets/clothing-small: pooled activations of several MobileNetV2 layers
 *    (extracted once, cached in bench/.cache/), a head per layer trained on train, chosen on validation, refit on
 *    train + validation, scored on test.
 * 3. Reference: scikit-learn's multinomial LogisticRegression with C tuned on validation, on the winning cut's
 *    features: the first of `python3` on PATH and /usr/bin/python3 that has scikit-learn; if neither has it,
 *    Debian's python3-sklearn is installed (apt-get, when run as root). Without scikit-learn the benchmark fails
 *    rather than print a null reference; `--skip-reference` skips it on purpose.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTf } from '../shared/tf/tf-runtime.js';
import { computeMetrics, loadHead, type TrainInput, trainHead } from '../shared/train/index.js';
import { gaussianBlobs } from '../shared/train/synthetic-blobs.js';
import { type ClothingFeatures, clothingFeatures, type SplitName } from './clothing-features.js';

const here = dirname(fileURLToPath(import.meta.url));
const DATASET = '/work/shared/datasets/clothing-small';
const CACHE_DIR = join(here, '.cache');
const CUTS = [
  'flatten_1',
  'block_16_expand_relu',
  'block_16_project_BN',
  'block_15_add',
  'block_14_add',
  'block_13_expand_relu',
  'block_13_depthwise_relu',
  'block_12_expand_relu',
  'block_12_add',
  'dense_1',
];
const REFERENCE_CS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1, 3, 10];

const args = new Set(process.argv.slice(2));

function emit(metric: string, value: number | null, unit: string, extra: Record<string, unknown> = {}): void {
  const rounded = value === null ? null : Number(value.toPrecision(6));
  process.stdout.write(`${JSON.stringify({ metric, value: rounded, unit, ...extra })}\n`);
}

function log(message: string): void {
  process.stderr.write(`[train-bench] ${message}\n`);
}

async function syntheticSpeed(dim: number): Promise<number> {
  // Overlapping blobs (about 90% separable), so the search has a real choice to make.
  const data = gaussianBlobs({
    perLabel: 1000,
    labels: 10,
    dim,
    separation: 0.1,
    seed: 1,
    offset: 0.5,
  });
  const started = performance.now();
  const result = await trainHead(data, {
    onCandidate: (c) =>
      log(`synthetic ${c.headType} l2=${c.l2}: ${c.epochs} epochs, ${c.seconds.toFixed(1)} s`),
  });
  const seconds = (performance.now() - started) / 1000;
  emit(dim === 1280 ? 'train_seconds' : `train_seconds_${dim}`, seconds, 's', {
    note: `10000 x ${dim}, 10 labels, wasm, ${result.search.length} candidates + refit; chose ${result.config.headType} l2=${result.config.l2}`,
  });
  emit('train_peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB', { dim });
  emit('synthetic_validation_accuracy', result.metrics.accuracy, 'ratio', { dim });
  return seconds;
}

function rowsOf(features: ClothingFeatures, split: SplitName): number[] {
  return features.images.flatMap((im, i) => (im.split === split ? [i] : []));
}

function pick(all: Float32Array, dim: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    out.set(all.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
}

interface CutResult {
  layer: string;
  validationAccuracy: number;
  testAccuracy: number;
  testMacroF1: number;
  config: string;
}

async function cutStudy(): Promise<{ features: ClothingFeatures; best: CutResult } | undefined> {
  if (!existsSync(DATASET)) {
    emit('clothing_test_accuracy', null, 'ratio', { note: `${DATASET} not found` });
    return undefined;
  }
  const features = await clothingFeatures(DATASET, CUTS, CACHE_DIR, log);
  emit('feature_extract_seconds', features.extractSeconds, 's', {
    note: `${features.images.length} images, one multi-output forward pass per batch of 16${features.fromCache ? ' (read from cache)' : ''}`,
  });
  if (features.skipped.length > 0) log(`decoder refused ${features.skipped.length} images`);
  const labelIndex = new Map(features.labelNames.map((l, i) => [l, i]));
  const labels = Int32Array.from(features.images, (im) => labelIndex.get(im.label)!);
  // Path hashes rather than content hashes: the data set may hold the same photo twice, which trainHead refuses.
  const ids = features.images.map((im) => createHash('sha256').update(im.path).digest('hex'));
  const fit = [...rowsOf(features, 'train'), ...rowsOf(features, 'validation')];
  const test = rowsOf(features, 'test');
  const validationIds = rowsOf(features, 'validation').map((r) => ids[r]!);

  const results: CutResult[] = [];
  for (const layer of CUTS) {
    const { dim, features: all } = features.layers[layer]!;
    const input: TrainInput = {
      features: pick(all, dim, fit),
      dim,
      labels: fit.map((r) => labels[r]!),
      labelNames: features.labelNames,
      ids: fit.map((r) => ids[r]!),
    };
    const started = performance.now();
    const result = await trainHead(input, { validationIds });
    const head = await loadHead(result.head);
    const probs = head.predict(pick(all, dim, test), test.length);
    head.dispose();
    const scored = computeMetrics(
      test.map((r) => labels[r]!),
      probs,
      features.labelNames,
    );
    const config = `${result.config.headType} l2=${result.config.l2} epochs=${result.config.epochs}`;
    log(`${layer} (${dim}): ${config}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    emit(`cut_${layer}_validation_accuracy`, result.metrics.accuracy, 'ratio', {
      note: `dim ${dim}, ${config}`,
    });
    emit(`cut_${layer}_test_accuracy`, scored.accuracy, 'ratio');
    results.push({
      layer,
      validationAccuracy: result.metrics.accuracy,
      testAccuracy: scored.accuracy,
      testMacroF1: scored.macroF1,
      config,
    });
  }
  // Chosen on validation only; the first listed cut wins ties.
  const best = results.reduce((a, b) => (b.validationAccuracy > a.validationAccuracy ? b : a));
  emit('clothing_test_accuracy', best.testAccuracy, 'ratio', { note: `cut ${best.layer}, ${best.config}` });
  emit('clothing_test_macro_f1', best.testMacroF1, 'ratio', { note: `cut ${best.layer}` });
  return { features, best };
}

const hasSklearn = (python: string) =>
  spawnSync(python, ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0;

/** The python that has scikit-learn: the one on PATH first, then Debian's, installing Debian's package if need be. */
function findSklearnPython(): string {
  const candidates = ['python3', '/usr/bin/python3'];
  const found = candidates.find(hasSklearn);
  if (found) return found;
  log('scikit-learn not found; installing Debian python3-sklearn...');
  const apt = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq python3-sklearn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (apt.status === 0 && hasSklearn('/usr/bin/python3')) return '/usr/bin/python3';
  throw new Error(
    `no python with scikit-learn (tried ${candidates.join(', ')}, and apt-get install python3-sklearn ${apt.status === 0 ? 'did not provide it' : 'failed'}): install it, or pass --skip-reference`,
  );
}

async function reference(features: ClothingFeatures, best: CutResult): Promise<void> {
  const python = findSklearnPython();
  const { dim, features: all } = features.layers[best.layer]!;
  const labelIndex = new Map(features.labelNames.map((l, i) => [l, i]));
  const dir = await mkdtemp(join(tmpdir(), 'train-bench-'));
  try {
    const splits: Record<string, number> = {};
    for (const split of ['train', 'validation', 'test'] as const) {
      const rows = rowsOf(features, split);
      splits[split] = rows.length;
      await writeFile(join(dir, `${split}.f32`), pick(all, dim, rows));
      await writeFile(
        join(dir, `${split}.labels`),
        Int32Array.from(rows, (r) => labelIndex.get(features.images[r]!.label)!),
      );
    }
    await writeFile(
      join(dir, 'meta.json'),
      JSON.stringify({ dim, splits, cs: REFERENCE_CS, class_weight: null }),
    );
    log(`scikit-learn reference on ${best.layer} (${dim} features)...`);
    const run = spawnSync(python, [join(here, 'sklearn-reference.py'), dir], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (run.status !== 0) throw new Error(`sklearn reference failed: ${run.stderr}`);
    const out = JSON.parse(run.stdout) as {
      C: number;
      test_accuracy: number;
      test_macro_f1: number;
      seconds: number;
    };
    emit('reference_test_accuracy', out.test_accuracy, 'ratio', {
      note: `sklearn multinomial lbfgs on ${best.layer}, C=${out.C} tuned on validation, ${out.seconds.toFixed(0)} s`,
    });
    emit('reference_test_macro_f1', out.test_macro_f1, 'ratio');
    emit('reference_ratio', best.testAccuracy / out.test_accuracy, 'ratio', {
      note: 'ours / reference, test accuracy',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await initTf({ backend: 'wasm' });
if (!args.has('--skip-synthetic')) {
  const narrow = await syntheticSpeed(1280);
  const wide = await syntheticSpeed(3264);
  emit('train_seconds_ratio_3264_over_1280', wide / narrow, 'ratio', { note: 'same run' });
}
if (!args.has('--skip-cuts')) {
  const study = await cutStudy();
  if (study && !args.has('--skip-reference')) await reference(study.features, study.best);
}
