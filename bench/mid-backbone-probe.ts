// npx tsx bench/mid-backbone-probe.ts [extract|score|latency|all] [size]: where to cut nsfwjs'
// mobilenet_v2_mid, and how to pool it, chosen on clothing-small validation. One JSON object per line.
//
// extract: the source graph model, run as shipped (tfjs dequantizes its uint8 weights), executed once per batch
//   to every candidate cut, each map pooled both ways; cached under bench/.cache/mid-probe/<size>/.
// score: scikit-learn's logistic regression on standardized features, C tuned on validation, refit on train +
//   validation, scored on test (bench/sklearn-reference.py).
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
      const px = await Promise.all(
        chunk.map(async (f) => (await decodeImage(readBytes(f.path), { size })).data),
      );
      labels.push(...chunk.map((f) => labelNames.indexOf(f.label)));
      const pooled = tf.tidy(() => {
        const x = tf.tidy(() =>
          tf.div(
            tf.tensor4d(Float32Array.from(px.flatMap((p) => Array.from(p))), [px.length, size, size, 3]),
            255,
          ),
        );
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
  const dir = join(cacheRoot, String(size));
  const { counts } = JSON.parse(readFileSync(join(dir, 'done.json'), 'utf8')) as {
    counts: Record<string, number>;
  };
  const work = join(dir, `sk-${midCutSlug(cut)}-${pooling}`);
  mkdirSync(work, { recursive: true });
  const bytes = readFileSync(featPath(size, 'train', cut, pooling)).byteLength;
  const dim = bytes / 4 / counts.train!;
  for (const split of SPLITS) {
    writeFileSync(join(work, `${split}.f32`), readFileSync(featPath(size, split, cut, pooling)));
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
  if (phase === 'latency' || phase === 'all') {
    const { latencyStudy } = await import('./mid-backbone-latency.js');
    await latencyStudy({ sizes, cuts: MID_CUT_CANDIDATES });
  }
}

await main();
