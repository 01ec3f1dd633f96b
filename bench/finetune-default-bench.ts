/**
 * npm run bench:finetune: head-only training against fine-tuning on the default backbone (the 1.4-wide
 * MobileNetV2), on clothing-small, both through the code the training function runs. JSON lines on stdout.
 *
 *   npx tsx bench/finetune-default-bench.ts [--max-epochs=N]
 *
 * 1. One dual pass per photo (loadDualExtractor: the pooled grid feature and the trunk's unpooled activation, as
 *    the precompute function caches them; the activation rounded to float16 as the cache stores it), cached in
 *    bench/.cache/. Plain views only: fine-tuning's cost grows with its rows, and this measures the choice.
 * 2. Head-only: trainHead on train with the validation split held out, refit, scored on test.
 * 3. Fine-tuned: fineTune from the same split (warm start from a head on the pooled output of the pretrained
 *    top), scored on test through the stored top (loadTop), as the edge runs it.
 * The MobileNetV2 1.0 study of where to cut is bench/finetune-bench.ts (`npm run bench:finetune:mnv2`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildDefaultBackbone,
  calibrationPhotosDir,
  DEFAULT_INPUT_SIZE,
  defaultBackboneId,
} from '../shared/backbone/index.js';
import { fromFloat16, toFloat16 } from '../shared/backbone/quantize.js';
import {
  buildDefaultFineTuning,
  buildDefaultSegment,
  fineTune,
  loadDualExtractor,
  loadTop,
} from '../shared/finetune/index.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { loadHead, trainHead } from '../shared/train/index.js';
import { clothingSmallDir, emit, listSplit, readBytes, repoRoot } from './bench-util.js';

const SPLITS = ['train', 'validation', 'test'] as const;
const CACHE = join(repoRoot, 'bench', '.cache', `finetune-${defaultBackboneId()}`);
const log = (line: string) => process.stderr.write(`[finetune-default] ${line}\n`);
const maxEpochs = Number(process.argv.find((a) => a.startsWith('--max-epochs='))?.split('=')[1] ?? 15);

interface Extracted {
  pooled: Float32Array;
  spatial: Float32Array;
  poolDim: number;
  spatialDim: number;
}

function calibrationFiles(): string[] {
  const root = calibrationPhotosDir();
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(root, d.name)).map((f) => join(root, d.name, f)));
}

async function extractSplit(split: string, files: string[]): Promise<Extracted> {
  const path = join(CACHE, `${split}.json`);
  if (existsSync(path)) {
    const meta = JSON.parse(await readFile(path, 'utf8')) as {
      n: number;
      poolDim: number;
      spatialDim: number;
    };
    if (meta.n === files.length) {
      const p = await readFile(join(CACHE, `${split}.pooled.f32`));
      const s = await readFile(join(CACHE, `${split}.spatial.f32`));
      return {
        pooled: new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4).slice(),
        spatial: new Float32Array(s.buffer, s.byteOffset, s.byteLength / 4).slice(),
        poolDim: meta.poolDim,
        spatialDim: meta.spatialDim,
      };
    }
  }
  const fidelity = await Promise.all(
    calibrationFiles().map(async (f) => (await decodeImage(readBytes(f), { size: DEFAULT_INPUT_SIZE })).data),
  );
  const backbone = (await buildDefaultBackbone({ fidelityImages: fidelity })).pkg;
  const { trunk } = await buildDefaultFineTuning({ fidelityImages: fidelity });
  const dual = loadDualExtractor(backbone, trunk.pkg);
  const pooled = new Float32Array(files.length * dual.featureDim);
  const spatial = new Float32Array(files.length * dual.trunkDim);
  for (let i = 0; i < files.length; i += 16) {
    const pixels = await Promise.all(
      files
        .slice(i, i + 16)
        .map(async (f) => (await decodeImage(readBytes(f), { size: DEFAULT_INPUT_SIZE })).data),
    );
    const out = await dual.extract(pixels);
    out.pooled.forEach((v, j) => {
      pooled.set(v, (i + j) * dual.featureDim);
    });
    out.spatial.forEach((v, j) => {
      // Rounded to float16, as the feature cache stores activations.
      const at = (i + j) * dual.trunkDim;
      for (let q = 0; q < v.length; q++) spatial[at + q] = fromFloat16(toFloat16(v[q]!));
    });
    if (i % 400 === 0) log(`${split}: ${i + pixels.length}/${files.length}`);
  }
  dual.dispose();
  await mkdir(CACHE, { recursive: true });
  await writeFile(join(CACHE, `${split}.pooled.f32`), pooled);
  await writeFile(join(CACHE, `${split}.spatial.f32`), spatial);
  const meta = { n: files.length, poolDim: dual.featureDim, spatialDim: dual.trunkDim };
  await writeFile(`${path}.tmp`, JSON.stringify(meta));
  await rename(`${path}.tmp`, path);
  return { pooled, spatial, ...meta };
}

function accuracy(probs: Float32Array, labels: readonly number[], k: number): number {
  let right = 0;
  labels.forEach((y, i) => {
    const row = probs.subarray(i * k, (i + 1) * k);
    if (row.indexOf(Math.max(...row)) === y) right++;
  });
  return right / labels.length;
}

async function main(): Promise<void> {
  await initTf({ backend: 'wasm' });
  const lists = Object.fromEntries(SPLITS.map((s) => [s, listSplit(clothingSmallDir, s)]));
  if (lists.train!.length === 0) {
    emit('finetune_default_test_accuracy', null, 'ratio', { note: 'clothing-small is not on this machine' });
    return;
  }
  const labelNames = [...new Set(lists.train!.map((f) => f.label))].sort();
  const data = Object.fromEntries(
    await Promise.all(
      SPLITS.map(
        async (s) =>
          [
            s,
            await extractSplit(
              s,
              lists[s]!.map((f) => f.path),
            ),
          ] as const,
      ),
    ),
  );
  const fit = SPLITS.slice(0, 2).flatMap((s) => lists[s]!);
  const ids = fit.map((f) => f.path);
  const labels = fit.map((f) => labelNames.indexOf(f.label));
  const validationIds = lists.validation!.map((f) => f.path);
  const concat = (a: Float32Array, b: Float32Array) => {
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  const testLabels = lists.test!.map((f) => labelNames.indexOf(f.label));
  const k = labelNames.length;

  let started = performance.now();
  const head = await trainHead(
    {
      features: concat(data.train!.pooled, data.validation!.pooled),
      dim: data.train!.poolDim,
      labels,
      labelNames,
      ids,
    },
    { validationIds },
  );
  const headSeconds = (performance.now() - started) / 1000;
  const loadedHead = await loadHead(head.head);
  const headTest = accuracy(loadedHead.predict(data.test!.pooled, testLabels.length), testLabels, k);
  loadedHead.dispose();
  emit('finetune_default_head_only_test_accuracy', headTest, 'ratio', {
    validation: head.metrics.accuracy,
    seconds: Number(headSeconds.toFixed(1)),
    config: `${head.config.headType} l2=${head.config.l2} (${head.config.selection})`,
  });

  const segment = await buildDefaultSegment();
  started = performance.now();
  const tuned = await fineTune(
    { features: concat(data.train!.spatial, data.validation!.spatial), labels, labelNames, ids },
    {
      segment,
      trunkId: 'bench-trunk',
      validationIds,
      maxEpochs,
      onEpoch: (r) => {
        log(
          `epoch ${r.epoch}: validation loss ${r.validationLoss.toFixed(4)}, accuracy ${r.validationAccuracy.toFixed(4)}`,
        );
      },
    },
  );
  const tuneSeconds = (performance.now() - started) / 1000;
  const top = loadTop(tuned.top);
  const tunedTest = accuracy(top.predict(data.test!.spatial, testLabels.length), testLabels, k);
  top.dispose();
  emit('finetune_default_test_accuracy', tunedTest, 'ratio', {
    validation: tuned.metrics.accuracy,
    validation_loss: Number(tuned.validationLoss.toFixed(4)),
    head_only_validation_loss: Number(head.validationLoss.toFixed(4)),
    best_epoch: tuned.bestEpoch,
    stopped_by: tuned.stoppedBy,
    seconds: Number(tuneSeconds.toFixed(1)),
    n_train: tuned.nTrain,
  });
  emit('finetune_default_seconds_ratio', tuneSeconds / headSeconds, 'ratio', {
    note: 'fine-tuning time / head-only training time, same run',
  });
}

await main();
