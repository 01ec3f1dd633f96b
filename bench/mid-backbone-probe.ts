// npx tsx bench/mid-backbone-probe.ts [extract|score|latency|all] [size]: where to cut nsfwjs'
// mobilenet_v2_mid, and how to pool it, chosen on clothing-small validation. One JSON object per line.
//
// extract: the source graph model, run as shipped (tfjs dequantizes its uint8 weights), executed once per batch
//   to every candidate cut, each map pooled both ways; cached under bench/.cache/mid-probe/<size>/.
// score: scikit-learn's logistic regression on standardized features, C tuned on validation, refit on train +
//   validation, scored on test (bench/sklearn-reference.py).
// depths: multi-depth concatenation, the default cut's grid plus globally averaged earlier and later blocks
//   (DEPTH_EXTRAS), extracted once to bench/.cache/mid-probe/<size>/depths/ and scored as score does.
// latency: each cut exported to per-channel int8 (buildMidBackbone), warm p50 per image on wasm against today's
//   default in the same run, weights bytes, fidelity against the source on the calibration photos.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { gridAvgPool2 } from '../shared/backbone/grid-pool.js';
import { MID_CUT_CANDIDATES, MID_PREFIX, midCutSlug } from '../shared/backbone/mid-backbone.js';
import { nsfwjsSourcePackage } from '../shared/backbone/nsfwjs-source.js';
import { exactArrayBuffer } from '../shared/bytes.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { clothingSmallDir, emit, listSplit, readBytes, repoRoot } from './bench-util.js';

const SPLITS = ['train', 'validation', 'test'] as const;
const SIZES = [224, 160];
const POOLINGS = ['avg', 'grid2'] as const;
const CS = [3e-3, 1e-2, 3e-2, 1e-1];
const cacheRoot = join(repoRoot, 'bench', '.cache', 'mid-probe');
const log = (msg: string) => process.stderr.write(`${msg}\n`);
const featPath = (size: number, split: string, cut: string, pooling: string) =>
  join(cacheRoot, String(size), `${split}.${midCutSlug(cut)}.${pooling}.f32`);

async function loadSourceAt(size: number) {
  const converter = await import('@tensorflow/tfjs-converter');
  const pkg = nsfwjsSourcePackage(
    'mobilenet_v2_mid',
    { layer: 'input', pooling: 'none', dim: 1 },
    { inputSize: size },
  );
  return converter.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: pkg.tfjs!.modelTopology as tf.io.ModelArtifacts['modelTopology'],
      weightSpecs: pkg.tfjs!.weightSpecs as tf.io.WeightsManifestEntry[],
      weightData: exactArrayBuffer(pkg.weights),
    }),
  );
}

/** A chunk of photos decoded and resized as extraction does. */
function decodeChunk(chunk: readonly { path: string }[], size: number): Promise<Uint8Array[]> {
  return Promise.all(chunk.map(async (f) => (await decodeImage(readBytes(f.path), { size })).data));
}

/** The source graph's input for decoded photos: one batch, scaled to 0..1 (call inside tf.tidy). */
function batchInput(px: readonly Uint8Array[], size: number): tf.Tensor4D {
  const flat = new Float32Array(px.length * size * size * 3);
  for (const [i, p] of px.entries()) flat.set(p, i * size * size * 3);
  return tf.div(tf.tensor4d(flat, [px.length, size, size, 3]), 255);
}

async function extract(size: number): Promise<void> {
  const dir = join(cacheRoot, String(size));
  if (existsSync(join(dir, 'done.json'))) {
    log(`features at ${size} px cached`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  const model = await loadSourceAt(size);
  const outputs = MID_CUT_CANDIDATES.map((c) => MID_PREFIX + c);
  const counts: Record<string, number> = {};
  const started = performance.now();
  for (const split of SPLITS) {
    const files = listSplit(clothingSmallDir, split);
    const labelNames = [...new Set(listSplit(clothingSmallDir, 'train').map((f) => f.label))].sort();
    const rows: Record<string, Float32Array[]> = {};
    const labels: number[] = [];
    for (let start = 0; start < files.length; start += 16) {
      const chunk = files.slice(start, start + 16);
      const px = await decodeChunk(chunk, size);
      labels.push(...chunk.map((f) => labelNames.indexOf(f.label)));
      const pooled = tf.tidy(() => {
        const x = batchInput(px, size);
        const maps = model.execute(x, outputs) as tf.Tensor4D[];
        return maps.flatMap((m) => [tf.mean(m, [1, 2]) as tf.Tensor2D, gridAvgPool2(m)]);
      });
      const values = await Promise.all(pooled.map((t) => t.data() as Promise<Float32Array>));
      for (const t of pooled) t.dispose();
      MID_CUT_CANDIDATES.forEach((cut, i) => {
        POOLINGS.forEach((pooling, j) => {
          const key = `${cut}|${pooling}`;
          rows[key] = [...(rows[key] ?? []), values[i * 2 + j]!];
        });
      });
      if (start % 320 === 0) log(`${size} px ${split} ${start}/${files.length}`);
    }
    for (const [key, parts] of Object.entries(rows)) {
      const [cut, pooling] = key.split('|') as [string, string];
      const flat = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        flat.set(p, at);
        at += p.length;
      }
      writeFileSync(featPath(size, split, cut, pooling), new Uint8Array(flat.buffer));
    }
    writeFileSync(join(dir, `${split}.labels`), new Uint8Array(Int32Array.from(labels).buffer));
    counts[split] = labels.length;
  }
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(join(dir, 'done.json'), JSON.stringify({ counts, seconds }));
  model.dispose();
  emit('mid_probe_extract_seconds', seconds, 's', { size, counts });
}

function findSklearnPython(): string {
  for (const p of ['python3', '/usr/bin/python3']) {
    if (spawnSync(p, ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0) return p;
  }
  throw new Error('no python with scikit-learn (tried python3, /usr/bin/python3)');
}

function score(
  size: number,
  cut: string,
  pooling: string,
): { validation: number; test: number; C: number; dim: number } {
  return scoreFeatures({
    dir: join(cacheRoot, String(size)),
    name: `${midCutSlug(cut)}-${pooling}`,
    features: (split) => readFileSync(featPath(size, split, cut, pooling)),
  });
}

/** scikit-learn's tuned logistic regression on one feature set; `features` gives a split's rows, row-major f32. */
function scoreFeatures(options: {
  dir: string;
  name: string;
  features: (split: (typeof SPLITS)[number]) => Uint8Array;
}): { validation: number; test: number; C: number; dim: number } {
  const { dir } = options;
  const { counts } = JSON.parse(readFileSync(join(dir, 'done.json'), 'utf8')) as {
    counts: Record<string, number>;
  };
  const work = join(dir, `sk-${options.name}`);
  mkdirSync(work, { recursive: true });
  const dim = options.features('train').byteLength / 4 / counts.train!;
  for (const split of SPLITS) {
    writeFileSync(join(work, `${split}.f32`), options.features(split));
    writeFileSync(join(work, `${split}.labels`), readFileSync(join(dir, `${split}.labels`)));
  }
  writeFileSync(join(work, 'meta.json'), JSON.stringify({ dim, splits: counts, cs: CS, class_weight: null }));
  const run = spawnSync(findSklearnPython(), [join(repoRoot, 'bench', 'sklearn-reference.py'), work], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`sklearn reference failed: ${run.stderr}`);
  const out = JSON.parse(run.stdout) as { C: number; validation_accuracy: number; test_accuracy: number };
  return { validation: out.validation_accuracy, test: out.test_accuracy, C: out.C, dim };
}

/** Most telling first, so a probe cut short still answers: the pick, its neighbours, then avg pooling. */
function scoringOrder(): { cut: string; pooling: string }[] {
  const first = [
    'expanded_conv_13/depthwise/depthwise',
    'expanded_conv_13/expand/Relu6',
    'expanded_conv_12/add',
  ];
  const cuts = [...first, ...MID_CUT_CANDIDATES.filter((c) => !first.includes(c))];
  return [
    { cut: first[0]!, pooling: 'grid2' },
    { cut: first[0]!, pooling: 'avg' },
    ...cuts.slice(1).map((cut) => ({ cut, pooling: 'grid2' })),
    ...cuts.slice(1).map((cut) => ({ cut, pooling: 'avg' })),
  ];
}

/** Earlier and later blocks for multi-depth concatenation, each globally averaged (their grids would add 4x). */
const DEPTH_EXTRAS = ['expanded_conv_9/add', 'expanded_conv_11/add', 'expanded_conv_15/add', 'Conv_1/Relu6'];
const DEPTH_MAIN = 'expanded_conv_13/depthwise/depthwise';
const depthPath = (size: number, split: string, cut: string) =>
  join(cacheRoot, String(size), 'depths', `${split}.${midCutSlug(cut)}.f32`);

async function extractDepths(size: number): Promise<void> {
  const dir = join(cacheRoot, String(size), 'depths');
  if (existsSync(join(dir, 'done.json'))) {
    log(`depth features at ${size} px cached`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  const model = await loadSourceAt(size);
  const cuts = [DEPTH_MAIN, ...DEPTH_EXTRAS];
  const counts: Record<string, number> = {};
  const labelNames = [...new Set(listSplit(clothingSmallDir, 'train').map((f) => f.label))].sort();
  for (const split of SPLITS) {
    const files = listSplit(clothingSmallDir, split);
    const rows: Float32Array[][] = cuts.map(() => []);
    const labels: number[] = [];
    for (let start = 0; start < files.length; start += 16) {
      const chunk = files.slice(start, start + 16);
      const px = await decodeChunk(chunk, size);
      labels.push(...chunk.map((f) => labelNames.indexOf(f.label)));
      const pooled = tf.tidy(() => {
        const x = batchInput(px, size);
        const maps = model.execute(
          x,
          cuts.map((c) => MID_PREFIX + c),
        ) as tf.Tensor4D[];
        return maps.map((m, i) => (i === 0 ? gridAvgPool2(m) : (tf.mean(m, [1, 2]) as tf.Tensor2D)));
      });
      const values = await Promise.all(pooled.map((t) => t.data() as Promise<Float32Array>));
      for (const t of pooled) t.dispose();
      for (const [i, v] of values.entries()) rows[i]!.push(v);
      if (start % 320 === 0) log(`depths ${size} px ${split} ${start}/${files.length}`);
    }
    cuts.forEach((cut, i) => {
      writeFileSync(
        depthPath(size, split, cut),
        Buffer.concat(rows[i]!.map((r) => new Uint8Array(r.buffer))),
      );
    });
    writeFileSync(join(dir, `${split}.labels`), new Uint8Array(Int32Array.from(labels).buffer));
    counts[split] = labels.length;
  }
  writeFileSync(join(dir, 'done.json'), JSON.stringify({ counts }));
  model.dispose();
}

/** Row-wise concatenation of several cuts' cached features for one split. */
function concatRows(size: number, split: string, cuts: string[], n: number): Uint8Array {
  const parts = cuts.map((c) => new Float32Array(readFileSync(depthPath(size, split, c)).buffer.slice(0)));
  const dims = parts.map((p) => p.length / n);
  const width = dims.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * width);
  for (let r = 0; r < n; r++) {
    let at = r * width;
    parts.forEach((p, i) => {
      out.set(p.subarray(r * dims[i]!, (r + 1) * dims[i]!), at);
      at += dims[i]!;
    });
  }
  return new Uint8Array(out.buffer);
}

function scoreDepths(size: number): void {
  const dir = join(cacheRoot, String(size), 'depths');
  const { counts } = JSON.parse(readFileSync(join(dir, 'done.json'), 'utf8')) as {
    counts: Record<string, number>;
  };
  const combos = [
    [],
    ...DEPTH_EXTRAS.map((c) => [c]),
    ['expanded_conv_9/add', 'expanded_conv_11/add'],
    DEPTH_EXTRAS,
  ];
  for (const extras of combos) {
    const cuts = [DEPTH_MAIN, ...extras];
    const r = scoreFeatures({
      dir,
      name: cuts.map(midCutSlug).join('+'),
      features: (split) => concatRows(size, split, cuts, counts[split]!),
    });
    emit('mid_probe_depths_accuracy', r.validation, 'ratio', { ...r, cuts: cuts.map(midCutSlug), size });
  }
}

async function main(): Promise<void> {
  const [, , phase = 'all', only] = process.argv;
  const sizes = only ? [Number(only)] : SIZES;
  await initTf();
  if (phase === 'extract' || phase === 'all') for (const size of sizes) await extract(size);
  if (phase === 'score' || phase === 'all') {
    for (const size of sizes) {
      for (const { cut, pooling } of scoringOrder()) {
        const r = score(size, cut, pooling);
        emit('mid_probe_accuracy', r.validation, 'ratio', { ...r, cut, pooling, size });
      }
    }
  }
  if (phase === 'depths') {
    for (const size of sizes) {
      await extractDepths(size);
      scoreDepths(size);
    }
  }
  if (phase === 'latency' || phase === 'all') {
    const { latencyStudy } = await import('./mid-backbone-latency.js');
    await latencyStudy({ sizes, cuts: MID_CUT_CANDIDATES });
  }
}

await main();
