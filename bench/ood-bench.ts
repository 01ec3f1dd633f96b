// npm run bench:ood [-- --backbone <id> [--store <dir>]] [--far-dir <dir>]: how well each outlier detector
// tells photos of clothing labels never trained on from photos of the trained ones (clothing-small: train on 8
// labels, the test photos of the 2 held out are out-of-distribution), rotating the held-out pair, and unrelated
// images (synthetic ones, or those under --far-dir) from the trained labels' test photos; and what the chosen one
// adds to a prediction and to a training, as ratios to a bare head measured in the same run. The backbone is the
// default one (built as the tests build it) unless `--backbone` names another, read from `--store` (a file-system
// store, e.g. a local stack's).
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type Backbone, defaultBackboneId, loadBackbone, readBackbone } from '../shared/backbone/index.js';
import { decodeImage, ImageError } from '../shared/image/index.js';
import {
  auroc,
  calibrateOutlierDetector,
  createOutlierDetector,
  DEFAULT_OUTLIER_COMPONENTS,
  encodeOutlierDetector,
  fitOutlierDetector,
  fprAt95Tpr,
  type OutlierMethod,
  TRAINED_OUTLIER_METHOD,
  usesDoubt,
} from '../shared/outlier/index.js';
import { createFsStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { loadHead, type SerializedHead, trainHead } from '../shared/train/index.js';
import { testBackbone } from '../test/support/test-backbone.js';
import {
  clothingSmallDir,
  emit,
  type LabelledFile,
  listSplit,
  readBytes,
  repoRoot,
  timeRuns,
} from './bench-util.js';
import { cachedViewFeatures, pickRows } from './cached-view-features.js';

type Split = 'train' | 'validation' | 'test';
interface File extends LabelledFile {
  split: Split;
}

/** Sorted labels taken two at a time: a fixed rotation that holds out every label once. */
const PAIRS: [string, string][] = [
  ['dress', 'hat'],
  ['longsleeve', 'outwear'],
  ['pants', 'shirt'],
  ['shoes', 'shorts'],
  ['skirt', 't-shirt'],
];

interface Candidate {
  name: string;
  method?: OutlierMethod;
  components?: number;
  neighbour?: number;
  head?: 'msp' | 'energy' | 'maxlogit';
}

const CANDIDATES: Candidate[] = [
  { name: 'msp', head: 'msp' },
  { name: 'energy', head: 'energy' },
  { name: 'maxlogit', head: 'maxlogit' },
  { name: 'mahalanobis-k8', method: 'mahalanobis', components: 8 },
  { name: 'mahalanobis-k16', method: 'mahalanobis', components: 16 },
  { name: 'mahalanobis-k64', method: 'mahalanobis', components: 64 },
  { name: 'relative-mahalanobis-k16', method: 'relative-mahalanobis', components: 16 },
  { name: 'relative-mahalanobis-k32', method: 'relative-mahalanobis', components: 32 },
  { name: 'relative-mahalanobis-k64', method: 'relative-mahalanobis', components: 64 },
  { name: 'knn5-k64', method: 'knn', components: 64, neighbour: 5 },
  { name: 'mahalanobis+residual-k16', method: 'mahalanobis+residual', components: 16 },
  { name: 'mahalanobis+residual-k64', method: 'mahalanobis+residual', components: 64 },
  { name: 'combined-k16', method: 'combined', components: 16 },
  { name: 'mahalanobis+residual+doubt-k64', method: 'mahalanobis+residual+doubt', components: 64 },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function backboneFromArgs(): Promise<Backbone> {
  const id = arg('--backbone') ?? defaultBackboneId();
  if (id === defaultBackboneId()) return loadBackbone(await testBackbone());
  const dir = arg('--store') ?? join(repoRoot, '.headstart', 'store');
  return loadBackbone(await readBackbone(createFsStore({ root: dir }), id));
}

/** The head's logits: the last dense layer before its softmax, on the hidden layer's output for an MLP. */
async function headLogits(serialized: SerializedHead, x: Float32Array, n: number): Promise<Float32Array> {
  const json = serialized.modelJson as {
    modelTopology: object;
    weightsManifest: [{ weights: tf.io.WeightsManifestEntry[] }];
  };
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: serialized.weightData.slice().buffer,
    }),
  );
  const last = model.layers[model.layers.length - 1]!;
  const out = tf.tidy(() => {
    const input = tf.tensor2d(x, [n, serialized.inputDim]);
    const before =
      model.layers.length === 1
        ? input
        : (tfl
            .model({
              inputs: model.inputs,
              outputs: model.layers[model.layers.length - 2]!.output as tfl.SymbolicTensor,
            })
            .predict(input) as tf.Tensor2D);
    const [w, b] = last.getWeights();
    return tf.add(tf.matMul(before, w as tf.Tensor2D), b!).dataSync() as Float32Array;
  });
  model.dispose();
  return out;
}

function headScores(
  kind: 'msp' | 'energy' | 'maxlogit',
  probs: Float32Array,
  logits: Float32Array,
  k: number,
) {
  const n = probs.length / k;
  return Float32Array.from({ length: n }, (_, i) => {
    const p = probs.subarray(i * k, i * k + k);
    const z = logits.subarray(i * k, i * k + k);
    const m = Math.max(...z);
    if (kind === 'msp') return -Math.max(...p);
    if (kind === 'maxlogit') return -m;
    return -(m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)));
  });
}

const COMBO_PART = 'mahalanobis+residual-k64';
const COMBO = `msp+${COMBO_PART}`;

function record(
  r: { auroc: number[]; fpr: number[]; far: number[] },
  a: Float32Array,
  b: Float32Array,
  f: Float32Array,
) {
  r.auroc.push(auroc(a, b));
  r.fpr.push(fprAt95Tpr(a, b));
  r.far.push(auroc(a, f));
}

function spread(v: Float32Array): { mid: number; iqr: number } {
  const s = Float32Array.from(v).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { mid: q(0.5), iqr: q(0.75) - q(0.25) || 1 };
}

/** Far-off inputs nobody photographs for a clothing model: noise, flat colours, gradients and stripes. */
async function syntheticFeatures(backbone: Backbone): Promise<{ x: Float32Array; n: number }> {
  const size = backbone.inputSize;
  const images: Uint8Array[] = [];
  for (let i = 0; i < 48; i++) {
    const img = new Uint8Array(size * size * 3);
    let seed = i * 7919 + 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 4294967296;
    };
    const c = [rnd() * 255, rnd() * 255, rnd() * 255];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        for (let ch = 0; ch < 3; ch++) {
          const kind = i % 4;
          img[(y * size + x) * 3 + ch] =
            kind === 0
              ? rnd() * 255
              : kind === 1
                ? c[ch]!
                : kind === 2
                  ? ((x + y) / (2 * size)) * c[ch]!
                  : ((x >> 4) % 2) * c[ch]!;
        }
      }
    }
    images.push(img);
  }
  const dim = backbone.featureDim;
  const x = new Float32Array(images.length * dim);
  (await backbone.extract(images)).forEach((v, j) => {
    x.set(v, j * dim);
  });
  return { x, n: images.length };
}

/** `--far-dir DIR`: every JPEG, PNG or WebP under DIR (recursively) as the far-off set instead of the synthetic one. */
async function dirFeatures(backbone: Backbone, dir: string): Promise<{ x: Float32Array; n: number }> {
  const paths = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
    .sort();
  const pixels: Uint8Array[] = [];
  for (const f of paths) {
    try {
      pixels.push((await decodeImage(readBytes(join(dir, f)), { size: backbone.inputSize })).data);
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
      console.error(`[ood-bench] skipped ${f}: ${err.message}`);
    }
  }
  const dim = backbone.featureDim;
  const x = new Float32Array(pixels.length * dim);
  for (let i = 0; i < pixels.length; i += 16) {
    (await backbone.extract(pixels.slice(i, i + 16))).forEach((v, j) => {
      x.set(v, (i + j) * dim);
    });
  }
  return { x, n: pixels.length };
}

async function main(): Promise<void> {
  await initTf();
  const backbone = await backboneFromArgs();
  const files: File[] = (['train', 'validation', 'test'] as const).flatMap((split) =>
    listSplit(clothingSmallDir, split).map((f) => ({ ...f, split })),
  );
  if (files.length === 0) {
    emit('ood_near_auroc_mean', null, 'ratio', { note: 'clothing-small not found' });
    return;
  }
  const dim = backbone.featureDim;
  const all = await cachedViewFeatures({ backbone, files, view: 'identity', prefix: 'ood' });
  const id = (i: number) => createHash('sha256').update(files[i]!.path).digest('hex');
  const farDir = arg('--far-dir');
  const far = farDir ? await dirFeatures(backbone, farDir) : await syntheticFeatures(backbone);
  const farName = farDir ? 'dir' : 'synthetic';
  const results = new Map<string, { auroc: number[]; fpr: number[]; far: number[] }>(
    [...CANDIDATES.map((c) => c.name), COMBO].map((n) => [n, { auroc: [], fpr: [], far: [] }]),
  );
  const timing = { head: [] as number[], fit: [] as number[] };
  // Shares the stored detector calls unknown at its calibrated threshold (95% of validation accepted).
  const unknown = { test: [] as number[], heldOut: [] as number[], far: [] as number[] };
  let lastHead: { head: SerializedHead } | undefined;
  for (const pair of PAIRS) {
    const kept = [...new Set(files.map((f) => f.label))].sort().filter((l) => !pair.includes(l));
    const idx = (s: Split, inDist: boolean) =>
      files.flatMap((f, i) => (f.split === s && kept.includes(f.label) === inDist ? [i] : []));
    const [tr, va, teIn, teOut] = [
      idx('train', true),
      idx('validation', true),
      idx('test', true),
      idx('test', false),
    ];
    const fit = [...tr, ...va];
    const labels = fit.map((i) => kept.indexOf(files[i]!.label));
    const t0 = performance.now();
    const trained = await trainHead(
      { features: pickRows(all, dim, fit), dim, labels, labelNames: kept, ids: fit.map(id) },
      { validationIds: va.map(id) },
    );
    timing.head.push(performance.now() - t0);
    // The split head's probabilities of the validation photos, in their order: what training calibrates on.
    const predicted = new Map(trained.validationPredictions.ids.map((v, j) => [v, j]));
    const validationProbs = pickRows(
      trained.validationPredictions.probs,
      kept.length,
      va.map((i) => predicted.get(id(i))!),
    );
    // What training adds: the fit on the training split, the validation threshold and the held-out check.
    const t1 = performance.now();
    const positions = fit.map((_, j) => j);
    const calibrate = (c: { method: OutlierMethod; components?: number }) =>
      calibrateOutlierDetector({
        features: pickRows(all, dim, fit),
        dim,
        labels,
        trainRows: positions.slice(0, tr.length),
        validationRows: positions.slice(tr.length),
        validationProbs,
        ...c,
      }).detector!;
    const stored = calibrate({ method: TRAINED_OUTLIER_METHOD });
    timing.fit.push(performance.now() - t1);
    const head = await loadHead(trained.head);
    const k = kept.length;
    const scored = async (rows: number[]) => {
      const x = pickRows(all, dim, rows);
      return {
        x,
        probs: head.predict(x, rows.length),
        logits: await headLogits(trained.head, x, rows.length),
      };
    };
    const [sIn, sOut, sVal] = [await scored(teIn), await scored(teOut), await scored(va)];
    const sFar = {
      x: far.x,
      probs: head.predict(far.x, far.n),
      logits: await headLogits(trained.head, far.x, far.n),
    };
    const calledUnknown = (o: { x: Float32Array; probs: Float32Array }, n: number) =>
      stored.score(o.x, n, o.probs).filter((v) => v > stored.threshold!).length / n;
    unknown.test.push(calledUnknown(sIn, teIn.length));
    unknown.heldOut.push(calledUnknown(sOut, teOut.length));
    unknown.far.push(calledUnknown(sFar, far.n));
    const byName = new Map<string, Float32Array[]>();
    for (const c of CANDIDATES) {
      let a: Float32Array;
      let b: Float32Array;
      let f: Float32Array;
      let v: Float32Array;
      if (c.head) {
        a = headScores(c.head, sIn.probs, sIn.logits, k);
        b = headScores(c.head, sOut.probs, sOut.logits, k);
        f = headScores(c.head, sFar.probs, sFar.logits, k);
        v = headScores(c.head, sVal.probs, sVal.logits, k);
      } else if (usesDoubt(c.method!)) {
        const d = calibrate({ method: c.method!, components: c.components! });
        a = d.score(sIn.x, teIn.length, sIn.probs);
        b = d.score(sOut.x, teOut.length, sOut.probs);
        f = d.score(sFar.x, far.n, sFar.probs);
        v = d.score(sVal.x, va.length, sVal.probs);
      } else {
        const d = fitOutlierDetector({
          features: pickRows(all, dim, tr),
          dim,
          labels: tr.map((i) => kept.indexOf(files[i]!.label)),
          method: c.method!,
          ...(c.components ? { components: c.components } : {}),
          ...(c.neighbour ? { neighbour: c.neighbour } : {}),
        });
        a = d.score(sIn.x, teIn.length);
        b = d.score(sOut.x, teOut.length);
        f = d.score(sFar.x, far.n);
        v = d.score(sVal.x, va.length);
      }
      byName.set(c.name, [a, b, f, v]);
      record(results.get(c.name)!, a, b, f);
    }
    // Bench-only: the head's confidence and the feature distance, each scaled by its validation spread, summed.
    const [m, r] = [byName.get('msp')!, byName.get(COMBO_PART)!];
    const mix = (i: number) => {
      const [ms, rs] = [spread(m[3]!), spread(r[3]!)];
      return m[i]!.map((x, j) => (x - ms.mid) / ms.iqr + (r[i]![j]! - rs.mid) / rs.iqr);
    };
    record(results.get(COMBO)!, mix(0), mix(1), mix(2));
    head.dispose();
    lastHead = trained;
  }
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  for (const name of [...CANDIDATES.map((c) => c.name), COMBO]) {
    const r = results.get(name)!;
    emit(`ood_near_auroc_mean.${name}`, mean(r.auroc), 'ratio', {
      perPair: r.auroc.map((v) => Number(v.toFixed(4))),
    });
    emit(`ood_near_fpr_at_95tpr_mean.${name}`, mean(r.fpr), 'ratio');
    emit(`ood_far_${farName}_auroc_mean.${name}`, mean(r.far), 'ratio');
  }
  const chosen = CANDIDATES.find(
    (c) => c.method === TRAINED_OUTLIER_METHOD && c.components === DEFAULT_OUTLIER_COMPONENTS,
  )!;
  emit('ood_near_auroc_mean', mean(results.get(chosen.name)!.auroc), 'ratio', {
    method: chosen.name,
    target: '>= 0.85',
    backbone: backbone.manifest.id,
    pairs: PAIRS,
  });
  emit('ood_near_fpr_at_95tpr_mean', mean(results.get(chosen.name)!.fpr), 'ratio', { method: chosen.name });
  emit(`ood_far_${farName}_auroc_mean`, mean(results.get(chosen.name)!.far), 'ratio', {
    method: chosen.name,
    note: farDir
      ? `${far.n} images under ${farDir}`
      : `${far.n} synthetic photos: noise, flat colours, gradients, stripes`,
  });
  emit(`ood_far_${farName}_unknown_rate_mean`, mean(unknown.far), 'ratio', {
    method: TRAINED_OUTLIER_METHOD,
    note: 'share called unknown at the calibrated threshold; the same for the test photos of trained and held-out labels',
    trainedLabels: Number(mean(unknown.test).toFixed(4)),
    heldOutLabels: Number(mean(unknown.heldOut).toFixed(4)),
  });
  await costs(all, dim, files, timing, lastHead);
  backbone.dispose?.();
}

/** Latency of scoring one photo against a bare head prediction, and the chosen detector's artifact size. */
async function costs(
  all: Float32Array,
  dim: number,
  files: File[],
  timing: { head: number[]; fit: number[] },
  trained: { head: SerializedHead } | undefined,
) {
  const labelNames = [...new Set(files.map((f) => f.label))].sort();
  const tr = files.flatMap((f, i) => (f.split === 'train' ? [i] : []));
  const labels = tr.map((i) => labelNames.indexOf(files[i]!.label));
  const fitted = fitOutlierDetector({ features: pickRows(all, dim, tr), dim, labels });
  // The trained method's numbers are the fitted ones plus its doubt scale (any: only the time is measured).
  const detector = createOutlierDetector({
    ...fitted.params,
    method: TRAINED_OUTLIER_METHOD,
    doubtScale: 0.1,
  });
  const one = all.subarray(0, dim).slice();
  const tensorsBefore = tf.memory().numTensors;
  if (trained) {
    const head = await loadHead(trained.head);
    head.predict(one, 1);
    const headMs = await timeRuns(500, () => head.predict(one, 1));
    const probs = head.predict(one, 1);
    const outMs = await timeRuns(500, () => detector.score(one, 1, probs));
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    emit('ood_score_ms_per_prediction', med(outMs), 'ms', {
      target: '< 1',
      bareHeadMs: Number(med(headMs).toFixed(4)),
    });
    head.dispose();
  }
  const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
  emit('ood_training_time_ratio', sum(timing.fit) / sum(timing.head), 'ratio', {
    target: '< 0.10',
    note: 'fit + validation threshold + 2-label held-out check, over a full head search on the same data',
    fitMs: Math.round(sum(timing.fit) / timing.fit.length),
    headMs: Math.round(sum(timing.head) / timing.head.length),
  });
  const enc = encodeOutlierDetector(detector);
  emit('ood_artifact_bytes', enc.json.length + enc.weights.byteLength, 'bytes', {
    method: detector.method,
    k: detector.params.k,
  });
  emit('ood_tensor_growth', tf.memory().numTensors - tensorsBefore, 'tensors');
}

await main();
