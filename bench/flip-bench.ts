// npm run bench:flip: what flip-averaged prediction buys on clothing-small (validation and test, through the
// exported default backbone, the head trained with and without the training photos' mirrored views), averaging
// the head's probabilities or the features, and what a batch of two (the photo and its mirror) costs against a
// batch of one in the same run.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Backbone, buildMnv2Backbone, loadBackbone, MNV2_INPUT_SIZE } from '../shared/backbone/index.js';
import { createApp } from '../shared/http/index.js';
import { decodeImage } from '../shared/image/index.js';
import { encodeHeadVersion, flipPointer, type VersionServing, writeVersion } from '../shared/models/index.js';
import { UNSURE_FLIP_BELOW } from '../shared/pipeline/project-settings.js';
import { createFsStore, type ObjectStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import {
  computeMetrics,
  loadHead,
  type SerializedHead,
  type TrainInput,
  trainHead,
} from '../shared/train/index.js';
import { testBackbone } from '../test/support/test-backbone.js';
import { clothingSmallDir, emit, type LabelledFile, listSplit, percentile, readBytes } from './bench-util.js';
import { cachedViewFeatures, pickRows } from './cached-view-features.js';

type Split = 'train' | 'validation' | 'test';
interface File extends LabelledFile {
  split: Split;
}

function mean(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => (v + b[i]!) / 2);
}

/** Flip-averaged only where the single view's top score is under `below`: accuracy and the share mirrored. */
function gatedAccuracies(
  single: Float32Array,
  mirrored: Float32Array,
  k: number,
  score: (p: Float32Array) => number,
) {
  return [0.5, 0.6, 0.7, 0.8, 0.9, 0.95].map((below) => {
    const out = single.slice();
    let n = 0;
    for (let r = 0; r < single.length / k; r++) {
      const row = single.subarray(r * k, (r + 1) * k);
      if (Math.max(...row) >= below) continue;
      n++;
      for (let j = 0; j < k; j++) out[r * k + j] = (single[r * k + j]! + mirrored[r * k + j]!) / 2;
    }
    return { below, accuracy: score(out), share: n / (single.length / k) };
  });
}

/** Emits the accuracies (unless `quiet`); returns the head trained with the mirrored views. */
async function accuracy(backbone: Backbone, files: File[], quiet: boolean): Promise<SerializedHead> {
  const dim = backbone.featureDim;
  const labelNames = [...new Set(files.map((f) => f.label))].sort();
  const plain = await cachedViewFeatures({ backbone, files, view: 'identity', prefix: 'flip' });
  const flipped = await cachedViewFeatures({ backbone, files, view: 'hflip', prefix: 'flip' });
  const idx = (s: Split) => files.flatMap((f, i) => (f.split === s ? [i] : []));
  const [tr, va, te] = [idx('train'), idx('validation'), idx('test')];
  const id = (i: number) => createHash('sha256').update(files[i]!.path).digest('hex');
  const label = (i: number) => labelNames.indexOf(files[i]!.label);
  const fit = [...tr, ...va];
  const base: TrainInput = {
    features: pickRows(plain, dim, fit),
    dim,
    labels: fit.map(label),
    labelNames,
    ids: fit.map(id),
  };
  const withFlips: TrainInput = {
    features: new Float32Array([...base.features, ...pickRows(flipped, dim, tr)]),
    dim,
    labels: [...base.labels, ...tr.map(label)],
    labelNames,
    ids: [...base.ids, ...tr.map((i) => `${id(i)}.hflip`)],
  };
  let last: SerializedHead | undefined;
  for (const [name, input] of [
    ['plain', base],
    ['hflip', withFlips],
  ] as const) {
    if (quiet && name === 'plain') continue;
    // No refit: validation stays out of the fit, so its scores are the selection-free comparison.
    const result = await trainHead(input, { validationIds: va.map(id), refit: false });
    const head = await loadHead(result.head);
    last = result.head;
    for (const [split, rows] of [
      ['validation', va],
      ['test', te],
    ] as const) {
      const p = pickRows(plain, dim, rows);
      const m = pickRows(flipped, dim, rows);
      const truth = rows.map(label);
      const score = (probs: Float32Array) => computeMetrics(truth, probs, labelNames).accuracy;
      const single = score(head.predict(p, rows.length));
      const probAvg = score(mean(head.predict(p, rows.length), head.predict(m, rows.length)));
      const featAvg = score(head.predict(mean(p, m), rows.length));
      const gated = gatedAccuracies(
        head.predict(p, rows.length),
        head.predict(m, rows.length),
        labelNames.length,
        score,
      );
      const extra = { trainedOn: name, n: rows.length, head: result.config.headType };
      if (quiet) continue;
      emit(`flip_${split}_accuracy_single`, single, 'ratio', extra);
      emit(`flip_${split}_accuracy_prob_average`, probAvg, 'ratio', extra);
      emit(`flip_${split}_accuracy_feature_average`, featAvg, 'ratio', extra);
      for (const g of gated)
        emit(`flip_${split}_accuracy_gated`, g.accuracy, 'ratio', {
          ...extra,
          below: g.below,
          mirroredShare: g.share,
        });
    }
    head.dispose();
  }
  return last!;
}

async function latency(backbone: Backbone, files: File[]): Promise<void> {
  const photos = await Promise.all(
    files.slice(0, 8).map(async (f) => {
      const bytes = readBytes(f.path);
      const size = backbone.inputSize;
      return [
        (await decodeImage(bytes, { size })).data,
        (await decodeImage(bytes, { size, view: 'hflip' })).data,
      ] as const;
    }),
  );
  const one: number[] = [];
  const two: number[] = [];
  for (let r = 0; r < 15; r++) {
    for (const [p, m] of photos) {
      // Interleaved, so a neighbour's load on the shared machine falls on both alike.
      let t = performance.now();
      await backbone.extract([p]);
      one.push(performance.now() - t);
      t = performance.now();
      await backbone.extract([p, m]);
      two.push(performance.now() - t);
    }
  }
  const p1 = percentile(one, 50);
  const p2 = percentile(two, 50);
  emit('flip_backbone_batch1_p50', p1, 'ms', { backbone: backbone.manifest.id, n: one.length });
  emit('flip_backbone_batch2_p50', p2, 'ms', { n: two.length });
  emit('flip_backbone_batch2_over_batch1', p2 / p1, 'ratio');
}

/** A head version of `project` on `backbone`, promoted. */
async function publish(input: {
  store: ObjectStore;
  project: string;
  serving: VersionServing;
  backbone: Backbone;
  head: SerializedHead;
}): Promise<void> {
  const { manifest } = input.backbone;
  const encoded = encodeHeadVersion({
    common: {
      project: input.project,
      version: 'v1',
      createdAt: new Date().toISOString(),
      metrics: { accuracy: 0, macroF1: 0, n: 0 },
      datasetSnapshot: '0'.repeat(64),
      serving: input.serving,
      evaluation: {},
    },
    backbone: {
      id: manifest.id,
      weightsSha256: manifest.weightsSha256,
      inputSize: input.backbone.inputSize,
      featureDim: input.backbone.featureDim,
    },
    head: input.head,
    type: 'softmax',
    training: {},
  });
  await writeVersion(input.store, encoded.manifest, encoded.files);
  await flipPointer(input.store, input.project, 'v1', 'promoted', undefined);
}

/** MobileNetV2 1.0 at 224 px with a head on 400 validation and train photos' features (latency only). */
async function previousDefault(files: File[]): Promise<{ backbone: Backbone; head: SerializedHead }> {
  const photos = await Promise.all(
    files
      .slice(0, 16)
      .map(async (f) => (await decodeImage(readBytes(f.path), { size: MNV2_INPUT_SIZE })).data),
  );
  const backbone = await loadBackbone((await buildMnv2Backbone({ fidelityImages: photos })).pkg);
  const fit = files.filter((f) => f.split !== 'test').filter((_, i) => i % 8 === 0);
  const labelNames = [...new Set(fit.map((f) => f.label))].sort();
  const features = await cachedViewFeatures({
    backbone,
    files: fit,
    view: 'identity',
    prefix: 'flip-before',
  });
  const input: TrainInput = {
    features,
    dim: backbone.featureDim,
    labels: fit.map((f) => labelNames.indexOf(f.label)),
    labelNames,
    ids: fit.map((f) => createHash('sha256').update(f.path).digest('hex')),
  };
  return { backbone, head: (await trainHead(input, { refit: false })).head };
}

/**
 * Three projects with the same head: served single-view, flip-averaged and flip-averaged when unsure
 * (UNSURE_FLIP_BELOW, the default), and the previous default backbone's single view: HTTP p50 / mean / p90 of
 * each over test photos of every label, interleaved, via app.request.
 */
async function httpLatency(backbone: Backbone, files: File[], head: SerializedHead): Promise<void> {
  const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-flip-bench-')) });
  const projects = {
    single: { flip: false },
    flipped: { flip: true },
    unsure: { flip: true, flipBelow: UNSURE_FLIP_BELOW },
  } as const;
  for (const [project, serving] of Object.entries(projects)) {
    await publish({ store, project, serving, backbone, head });
  }
  // The default before this one (MobileNetV2 1.0, 224 px, one view): what "no slower than before" compares with.
  const before = await previousDefault(files);
  await publish({ store, project: 'before', serving: { flip: false }, ...before });
  const app = createApp({
    store,
    backbone: async () => backbone,
    backboneById: async (id) => (id === before.backbone.manifest.id ? before.backbone : backbone),
    config: { requireKeys: false },
  });
  // Every 9th test photo: about 40, from every label, so the share the gate mirrors is the test split's.
  const bodies = files
    .filter((f) => f.split === 'test')
    .filter((_, i) => i % 9 === 0)
    .map((f) => readBytes(f.path));
  const samples = {
    before: [] as number[],
    single: [] as number[],
    flipped: [] as number[],
    unsure: [] as number[],
  };
  let mirrored = 0;
  const send = async (project: keyof typeof samples, body: Uint8Array) => {
    const t = performance.now();
    const res = await app.request(`/v1/projects/${project}/predict`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'image/jpeg' },
    });
    if (res.status !== 200) throw new Error(`${project}: ${res.status} ${await res.text()}`);
    const ms = performance.now() - t;
    if (project === 'unsure' && ((await res.json()) as { mirrored: boolean }).mirrored) mirrored++;
    return ms;
  };
  for (const b of bodies)
    for (const p of Object.keys(projects) as (keyof typeof projects)[]) await send(p, b);
  mirrored = 0;
  const rounds = 4;
  for (let r = 0; r < rounds; r++) {
    for (const b of bodies) {
      for (const p of Object.keys(samples) as (keyof typeof samples)[]) samples[p].push(await send(p, b));
    }
  }
  const base = percentile(samples.single, 50);
  const beforeP50 = percentile(samples.before, 50);
  const meanOf = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  for (const [p, a] of Object.entries(samples)) {
    emit(`flip_http_${p}_p50`, percentile(a, 50), 'ms', {
      overSingleP50: percentile(a, 50) / base,
      overBeforeP50: percentile(a, 50) / beforeP50,
      mean: meanOf(a),
      meanOverSingle: meanOf(a) / meanOf(samples.single),
      p90: percentile(a, 90),
      n: a.length,
      ...(p === 'unsure' ? { mirroredShare: mirrored / a.length } : {}),
    });
  }
}

async function main(): Promise<void> {
  await initTf();
  const backbone = await loadBackbone(await testBackbone());
  const files: File[] = (['train', 'validation', 'test'] as const).flatMap((split) =>
    listSplit(clothingSmallDir, split).map((f) => ({ ...f, split })),
  );
  if (files.length === 0) {
    emit('flip_validation_accuracy_prob_average', null, 'ratio', { note: 'clothing-small not found' });
    return;
  }
  await latency(backbone, files);
  const head = await accuracy(backbone, files, process.argv.includes('--latency-only'));
  await httpLatency(backbone, files, head);
}

await main();
