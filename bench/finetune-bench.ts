/**
 * npm run bench:finetune: head-only training against fine-tuning the top block(s) of MobileNetV2 1.0 (the default before issue 14) on
 * clothing-small. JSON lines {"metric", "value", "unit"} on stdout; progress on stderr.
 *
 *   npx tsx bench/finetune-bench.ts [--study=A,B,C] [--only-study] [--max-epochs=N] [--skip-latency]
 *
 * 1. Extracts the frozen int8 trunk (buildMnv2Trunk, cut at block_11_add, unpooled) for every image once and
 *    caches it in bench/.cache/ (about 285 MB, float32). Activations at higher cuts are derived from it with the
 *    same int8 weights, which is bit-for-bit what a trunk cut there computes.
 * 2. Head-only: the default backbone's pooled feature (int8, block_13_depthwise_relu) -> trainHead on train,
 *    chosen on validation, refit on train + validation, scored on test.
 * 3. Fine-tune (MNV2_TRUNK_CUT -> MNV2_FEATURE_CUT): spatial activations rounded to float16 as the cache
 *    stores them, warm start from a head fitted on train, early stopping on validation, scored on test.
 *    `--study` also runs other block counts (validation decides; test is printed for the record only).
 * 4. Predict latency per image of both modes through the packages the edge loads, and cache bytes per image.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type NamedWeights, runGraph } from '../shared/backbone/headstart-graph.js';
import { buildMnv2Backbone, loadBackbone, MNV2_CUT } from '../shared/backbone/index.js';
import { loadNsfwjsMobileNetV2 } from '../shared/backbone/nsfwjs-source.js';
import { decodeWeights, encodeWeights, fromFloat16, toFloat16 } from '../shared/backbone/quantize.js';
import {
  buildMnv2Trunk,
  encodeSpatialFeatures,
  type FineTuneResult,
  fineTune,
  foldTopSegment,
  loadTop,
  MNV2_FEATURE_CUT,
  MNV2_TRUNK_CUT,
  mnv2TrunkId,
  parseTop,
  type TopSegment,
  topFiles,
} from '../shared/finetune/index.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { computeMetrics, loadHead, trainHead } from '../shared/train/index.js';
import { clothingSmallDir, emit, percentile, repoRoot, timeRuns } from './bench-util.js';
import { pickRows } from './cached-view-features.js';
import { type ClothingImage, listClothingImages, type SplitName } from './clothing-features.js';

const CACHE_DIR = join(repoRoot, 'bench', '.cache');
const BASE_CUT = 'block_11_add';
const SIZE = 224;

/** Block counts compared in the study: the trunk cut and where the retrained top ends. */
const CONFIGS: Record<string, { trunkCut: string; featureCut: string; note: string }> = {
  A: {
    trunkCut: 'block_12_add',
    featureCut: 'block_13_depthwise_relu',
    note: "block 13's expansion + depthwise (ends at the head-only cut)",
  },
  B: {
    trunkCut: 'block_11_add',
    featureCut: 'block_13_depthwise_relu',
    note: "block 12 + block 13's expansion + depthwise",
  },
  C: {
    trunkCut: 'block_13_depthwise_relu',
    featureCut: 'block_16_expand_relu',
    note: "block 13's projection, blocks 14-15, block 16's expansion",
  },
};

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'] as const;
  }),
);

function log(message: string): void {
  process.stderr.write(`[finetune-bench] ${message}\n`);
}

function rssMb(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

async function decodeAll(paths: string[]): Promise<(Uint8Array | Error)[]> {
  return Promise.all(
    paths.map(async (p) => {
      try {
        return (await decodeImage(new Uint8Array(await readFile(join(clothingSmallDir, p))), { size: SIZE }))
          .data;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    }),
  );
}

interface SpatialCache {
  images: ClothingImage[];
  /** n * 14*14*96 float32 activations at BASE_CUT from the int8 trunk. */
  values: Float32Array;
  dim: number;
  extractSeconds: number;
  fromCache: boolean;
}

async function fidelityPixels(images: ClothingImage[]): Promise<Uint8Array[]> {
  const picks = images.filter((im) => im.split === 'validation').filter((_, i) => i % 40 === 0);
  return (await decodeAll(picks.map((p) => p.path))).filter((d): d is Uint8Array => !(d instanceof Error));
}

async function spatialCache(): Promise<SpatialCache> {
  const { images: listed, bytes } = await listClothingImages(clothingSmallDir);
  const fidelity = await fidelityPixels(listed);
  const trunk = await buildMnv2Trunk({ cut: BASE_CUT, fidelityImages: fidelity });
  const { manifest } = trunk.pkg;
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: 1,
        trunk: manifest.id,
        weights: manifest.weightsSha256,
        files: listed.map((im, i) => [im.path, bytes[i]]),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const metaPath = join(CACHE_DIR, `finetune-${key}.json`);
  const binPath = join(CACHE_DIR, `finetune-${key}.bin`);
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as {
      images: ClothingImage[];
      dim: number;
      extractSeconds: number;
    };
    const buf = await readFile(binPath);
    const values = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    return { ...meta, values, fromCache: true };
  } catch {
    // No usable cache: extract below.
  }
  log(`extracting ${manifest.id} (${manifest.feature.dim} values per image) for ${listed.length} images`);
  const backbone = await loadBackbone(trunk.pkg);
  const dim = manifest.feature.dim;
  const started = performance.now();
  const kept: ClothingImage[] = [];
  const chunks: Float32Array[] = [];
  const BATCH = 16;
  let pending = decodeAll(listed.slice(0, BATCH).map((im) => im.path));
  for (let s = 0; s < listed.length; s += BATCH) {
    const decoded = await pending;
    pending = decodeAll(listed.slice(s + BATCH, s + 2 * BATCH).map((im) => im.path));
    const ok: Uint8Array[] = [];
    decoded.forEach((d, j) => {
      if (d instanceof Error) log(`skipping ${listed[s + j]!.path}: ${d.message}`);
      else {
        ok.push(d);
        kept.push(listed[s + j]!);
      }
    });
    for (const f of await backbone.extract(ok)) chunks.push(f);
    if ((s / BATCH) % 25 === 0) {
      log(
        `extracted ${s + ok.length}/${listed.length} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  backbone.dispose();
  const extractSeconds = (performance.now() - started) / 1000;
  const values = new Float32Array(kept.length * dim);
  chunks.forEach((c, i) => {
    values.set(c, i * dim);
  });
  await mkdir(CACHE_DIR, { recursive: true });
  // Write-then-rename so an interrupted run never leaves a half-written cache that a rerun would trust.
  await writeFile(`${binPath}.tmp`, new Uint8Array(values.buffer));
  await rename(`${binPath}.tmp`, binPath);
  await writeFile(metaPath, JSON.stringify({ images: kept, dim, extractSeconds }));
  return { images: kept, values, dim, extractSeconds, fromCache: false };
}

/** The int8 weights of a segment, exactly as the exported backbone stores and decodes them. */
function quantized(segment: TopSegment): Map<string, tf.Tensor> {
  const depthwise = new Set(segment.nodes.flatMap((n) => (n.op === 'depthwise_conv2d' ? [n.kernel] : [])));
  const { specs, data } = encodeWeights(segment.weights as NamedWeights, {
    mode: 'int8-per-channel',
    depthwise,
  });
  const decoded = decodeWeights(specs, data);
  return new Map([...decoded].map(([k, w]) => [k, tf.tensor(w.values, w.shape, 'float32')]));
}

/** Runs the frozen int8 nodes of `segment` over every cached activation; optionally pools. */
function runFrozen(segment: TopSegment, input: Float32Array, n: number, pool: boolean): Float32Array {
  const tensors = quantized(segment);
  const [h, w, c] = segment.inputShape;
  const inDim = h * w * c;
  const graph = {
    input: 'input' as const,
    output: pool ? 'pool' : segment.output,
    nodes: pool
      ? [...segment.nodes, { op: 'global_avg_pool' as const, name: 'pool', input: segment.output }]
      : segment.nodes,
  };
  let out: Float32Array | undefined;
  let outDim = 0;
  const B = 32;
  for (let s = 0; s < n; s += B) {
    const b = Math.min(B, n - s);
    const y = tf.tidy(() =>
      runGraph(graph, tensors, tf.tensor4d(input.subarray(s * inDim, (s + b) * inDim), [b, h, w, c])),
    );
    const v = y.dataSync() as Float32Array;
    y.dispose();
    if (!out) {
      outDim = v.length / b;
      out = new Float32Array(n * outDim);
    }
    out.set(v, s * outDim);
  }
  for (const t of tensors.values()) t.dispose();
  return out!;
}

function roundFloat16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = fromFloat16(toFloat16(values[i]!));
  return out;
}

async function main(): Promise<void> {
  await initTf({ backend: 'wasm' });
  const cache = await spatialCache();
  emit('spatial_extract_seconds', cache.extractSeconds, 's', {
    note: `${cache.images.length} images through the int8 trunk to ${BASE_CUT}${cache.fromCache ? ' (read from cache)' : ''}`,
  });
  const { images } = cache;
  const n = images.length;
  const labelNames = [...new Set(images.map((im) => im.label))].sort();
  const labelIndex = new Map(labelNames.map((l, i) => [l, i]));
  const labels = Int32Array.from(images, (im) => labelIndex.get(im.label)!);
  // Path hashes rather than content hashes: the data set may hold the same photo twice, which training refuses.
  const ids = images.map((im) => createHash('sha256').update(im.path).digest('hex'));
  const rowsOf = (split: SplitName) => images.flatMap((im, i) => (im.split === split ? [i] : []));
  const fit = [...rowsOf('train'), ...rowsOf('validation')];
  const test = rowsOf('test');
  const validationIds = rowsOf('validation').map((r) => ids[r]!);
  const testLabels = test.map((r) => labels[r]!);
  log(`${rowsOf('train').length} train, ${validationIds.length} validation, ${test.length} test`);

  const { model } = await loadNsfwjsMobileNetV2();
  const segmentOf = (trunkCut: string, featureCut: string) => foldTopSegment(model, { trunkCut, featureCut });

  // Head-only, on the default backbone's own feature.
  const toDefault = segmentOf(BASE_CUT, MNV2_CUT);
  const pooled = runFrozen(toDefault, cache.values, n, true);
  const pooledDim = toDefault.featureDim;
  let t = performance.now();
  const headOnly = await trainHead(
    {
      features: pickRows(pooled, pooledDim, fit),
      dim: pooledDim,
      labels: fit.map((r) => labels[r]!),
      labelNames,
      ids: fit.map((r) => ids[r]!),
    },
    { validationIds },
  );
  const headSeconds = (performance.now() - t) / 1000;
  const head = await loadHead(headOnly.head);
  const headTest = computeMetrics(
    testLabels,
    head.predict(pickRows(pooled, pooledDim, test), test.length),
    labelNames,
  );
  const headNote = `${headOnly.config.headType} l2=${headOnly.config.l2}, refit on train + validation`;
  emit('headonly_validation_accuracy', headOnly.metrics.accuracy, 'ratio', { note: headNote });
  emit('headonly_test_accuracy', headTest.accuracy, 'ratio', {
    note: `${MNV2_CUT} pooled (${pooledDim}), int8`,
  });
  emit('headonly_test_macro_f1', headTest.macroF1, 'ratio');
  emit('headonly_train_seconds', headSeconds, 's', { note: 'search + refit' });

  const configs = (args.get('study') ?? '').split(',').filter(Boolean);
  const chosen = Object.entries(CONFIGS).find(
    ([, c]) => c.trunkCut === MNV2_TRUNK_CUT && c.featureCut === MNV2_FEATURE_CUT,
  )?.[0];
  if (!chosen) throw new Error('the default cuts are not among the bench configurations');
  // --only-study skips the chosen configuration (and everything measured on it), to compare block counts cheaply.
  const runs = [...new Set(args.has('only-study') ? configs : [...configs, chosen])];
  let final:
    | { result: FineTuneResult; features16: Float32Array; features32: Float32Array; dim: number }
    | undefined;
  for (const name of runs) {
    const cfg = CONFIGS[name];
    if (!cfg) throw new Error(`unknown configuration ${name}`);
    const below = cfg.trunkCut === BASE_CUT ? undefined : segmentOf(BASE_CUT, cfg.trunkCut);
    const spatial32 = below ? runFrozen(below, cache.values, n, false) : cache.values;
    const segment = segmentOf(cfg.trunkCut, cfg.featureCut);
    const [h, w, c] = segment.inputShape;
    const dim = h * w * c;
    // The cache stores float16: train and score on exactly what it would hand back.
    const spatial16 = roundFloat16(spatial32);
    const rssBefore = rssMb();
    const cpuBefore = process.cpuUsage();
    t = performance.now();
    const result = await fineTune(
      {
        features: pickRows(spatial16, dim, fit),
        labels: fit.map((r) => labels[r]!),
        labelNames,
        ids: fit.map((r) => ids[r]!),
      },
      {
        segment,
        trunkId: mnv2TrunkId({ cut: cfg.trunkCut }),
        validationIds,
        ...(args.has('max-epochs') ? { maxEpochs: Number(args.get('max-epochs')) } : {}),
        onEpoch: (e) =>
          log(
            `${name} epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, validation loss ${e.validationLoss.toFixed(4)}, accuracy ${e.validationAccuracy.toFixed(4)}, ${e.seconds.toFixed(0)} s, rss ${rssMb().toFixed(0)} MB`,
          ),
      },
    );
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    // Through the stored form, as a version would be read back.
    const files = topFiles(result.top);
    const top = loadTop(parseTop(files.json, files.weights));
    const testMetrics = computeMetrics(
      testLabels,
      top.predict(pickRows(spatial16, dim, test), test.length),
      labelNames,
    );
    const tag = name === chosen ? 'finetune' : `study_${name}`;
    const note = `${cfg.trunkCut} -> ${cfg.featureCut}: ${cfg.note}; best epoch ${result.bestEpoch} of ${result.history.length - 1} (${result.stoppedBy})`;
    emit(`${tag}_validation_accuracy`, result.metrics.accuracy, 'ratio', { note });
    emit(`${tag}_validation_loss`, result.validationLoss, 'nats', {
      note: `warm start ${result.warmStart.validationLoss.toFixed(4)} (${result.warmStart.config.headType} l2=${result.warmStart.config.l2}, validation accuracy ${result.warmStart.metrics.accuracy.toFixed(4)})`,
    });
    emit(`${tag}_test_accuracy`, testMetrics.accuracy, 'ratio');
    emit(`${tag}_test_macro_f1`, testMetrics.macroF1, 'ratio');
    emit(`${tag}_train_seconds`, seconds, 's', {
      note: `${result.nTrain} training images (${result.nValidation} validation), warm-start search included, wasm, 1 thread`,
    });
    // Wall time on a shared machine overstates the work; CPU time is what one uncontended core would take.
    emit(`${tag}_train_cpu_seconds`, (cpu.user + cpu.system) / 1e6, 's', {
      note: 'process CPU time while fine-tuning (wasm is single-threaded, so about the wall time on an idle core)',
    });
    emit(
      `${tag}_seconds_per_epoch`,
      (result.history.at(-1)!.seconds - result.history[0]!.seconds) / Math.max(1, result.history.length - 1),
      's',
    );
    emit(`${tag}_peak_rss_mb`, process.resourceUsage().maxRSS / 1024, 'MB', {
      note: `process peak so far; rss ${rssBefore.toFixed(0)} MB before fine-tuning, of which ${((fit.length * dim * 4) / 2 ** 20).toFixed(0)} MB are the training activations`,
    });
    emit(`${tag}_top_bytes`, result.top.weights.byteLength, 'bytes');
    if (name === chosen) final = { result, features16: spatial16, features32: spatial32, dim };
    top.dispose();
  }

  if (final) {
    const { result, features16, features32, dim } = final;
    const top = loadTop(result.top);
    const p16 = top.predict(pickRows(features16, dim, test), test.length);
    const p32 = top.predict(pickRows(features32, dim, test), test.length);
    const m32 = computeMetrics(testLabels, p32, labelNames);
    const m16 = computeMetrics(testLabels, p16, labelNames);
    let maxDiff = 0;
    for (let i = 0; i < p16.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p16[i]! - p32[i]!));
    emit('finetune_float16_accuracy_delta', m16.accuracy - m32.accuracy, 'ratio', {
      note: `test accuracy on float16 minus float32 activations (same model); largest probability difference ${maxDiff.toExponential(2)}`,
    });
    const sample = new Float32Array(features32.subarray(0, dim));
    const id = mnv2TrunkId({ cut: MNV2_TRUNK_CUT });
    emit(
      'spatial_cache_bytes_per_image_float16',
      encodeSpatialFeatures(id, sample, 'float16').byteLength,
      'bytes',
      {
        note: `${MNV2_TRUNK_CUT} ${dim} values`,
      },
    );
    emit(
      'spatial_cache_bytes_per_image_float32',
      encodeSpatialFeatures(id, sample, 'float32').byteLength,
      'bytes',
    );
    top.dispose();
  }

  if (final && !args.has('skip-latency')) {
    // Through the packages the edge loads: backbone.extract + head.predict against trunk.extract + top.predict.
    const fidelity = await fidelityPixels(images);
    const backbone = await loadBackbone((await buildMnv2Backbone({ fidelityImages: fidelity })).pkg);
    const trunk = await loadBackbone((await buildMnv2Trunk({ fidelityImages: fidelity })).pkg);
    const top = loadTop(final.result.top);
    const samples = (await decodeAll(test.filter((_, i) => i % 20 === 0).map((r) => images[r]!.path))).filter(
      (d): d is Uint8Array => !(d instanceof Error),
    );
    const headRun = async (img: Uint8Array) => head.predict((await backbone.extract([img]))[0]!, 1);
    const topRun = async (img: Uint8Array) => top.predict((await trunk.extract([img]))[0]!, 1);
    let agree = 0;
    for (let i = 0; i < samples.length; i++) {
      const viaEdge = await topRun(samples[i]!);
      const viaCache = top.predict(pickRows(final.features16, final.dim, [test[i * 20]!]), 1);
      const argmax = (p: Float32Array) => p.indexOf(Math.max(...p));
      if (argmax(viaEdge) === argmax(viaCache)) agree++;
    }
    emit('finetune_edge_cache_top1_agreement', agree / samples.length, 'ratio', {
      note: `${samples.length} test images: trunk package + top vs cached float16 activations + top`,
    });
    const runsPer = 5;
    const headMs: number[] = [];
    const topMs: number[] = [];
    for (const img of samples) {
      headMs.push(...(await timeRuns(runsPer, () => headRun(img))));
      topMs.push(...(await timeRuns(runsPer, () => topRun(img))));
    }
    emit('headonly_predict_ms', percentile(headMs, 50), 'ms', {
      note: `median per image, batch 1, backbone + head, ${headMs.length} runs; p95 ${percentile(headMs, 95).toFixed(1)}`,
    });
    emit('finetune_predict_ms', percentile(topMs, 50), 'ms', {
      note: `median per image, batch 1, trunk + top + classifier, ${topMs.length} runs; p95 ${percentile(topMs, 95).toFixed(1)}`,
    });
    backbone.dispose();
    trunk.dispose();
    top.dispose();
  }
  head.dispose();
  emit('bench_peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB');
  model.dispose();
}

await main();
