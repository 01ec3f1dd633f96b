// npm run bench:flip: what flip-averaged prediction buys on clothing-small (validation and test, through the
// exported default backbone, the head trained with and without the training photos' mirrored views), averaging
// the head's probabilities or the features, and what a batch of two (the photo and its mirror) costs against a
// batch of one in the same run.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Backbone, loadBackbone } from '../shared/backbone/index.js';
import { createApp } from '../shared/http/index.js';
import { decodeImage } from '../shared/image/index.js';
import { encodeHeadVersion, flipPointer, writeVersion } from '../shared/models/index.js';
import { createFsStore } from '../shared/store/index.js';
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
      const extra = { trainedOn: name, n: rows.length, head: result.config.headType };
      if (quiet) continue;
      emit(`flip_${split}_accuracy_single`, single, 'ratio', extra);
      emit(`flip_${split}_accuracy_prob_average`, probAvg, 'ratio', extra);
      emit(`flip_${split}_accuracy_feature_average`, featAvg, 'ratio', extra);
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

/** Two projects with the same head, one served flip-averaged: HTTP p50 of each, interleaved, via app.request. */
async function httpLatency(backbone: Backbone, files: File[], head: SerializedHead): Promise<void> {
  const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-flip-bench-')) });
  const manifest = backbone.manifest;
  for (const [project, flip] of [
    ['single', false],
    ['flipped', true],
  ] as const) {
    const encoded = encodeHeadVersion({
      common: {
        project,
        version: 'v1',
        createdAt: new Date().toISOString(),
        metrics: { accuracy: 0, macroF1: 0, n: 0 },
        datasetSnapshot: '0'.repeat(64),
        serving: { flip },
        evaluation: {},
      },
      backbone: {
        id: manifest.id,
        weightsSha256: manifest.weightsSha256,
        inputSize: backbone.inputSize,
        featureDim: backbone.featureDim,
      },
      head,
      type: 'softmax',
      training: {},
    });
    await writeVersion(store, encoded.manifest, encoded.files);
    await flipPointer(store, project, 'v1', 'promoted', undefined);
  }
  const app = createApp({ store, backbone: async () => backbone, config: { requireKeys: false } });
  const bodies = files
    .filter((f) => f.split === 'test')
    .slice(0, 8)
    .map((f) => readBytes(f.path));
  const send = async (project: string, body: Uint8Array) => {
    const t = performance.now();
    const res = await app.request(`/v1/projects/${project}/predict`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'image/jpeg' },
    });
    if (res.status !== 200) throw new Error(`${project}: ${res.status} ${await res.text()}`);
    return performance.now() - t;
  };
  for (const b of bodies) await Promise.all([send('single', b), send('flipped', b)]); // warm-up, both loaded
  const single: number[] = [];
  const flipped: number[] = [];
  for (let r = 0; r < 10; r++) {
    for (const b of bodies) {
      single.push(await send('single', b));
      flipped.push(await send('flipped', b));
    }
  }
  const p1 = percentile(single, 50);
  const p2 = percentile(flipped, 50);
  emit('flip_http_single_p50', p1, 'ms', { n: single.length, via: 'app.request, 400x533-ish JPEGs' });
  emit('flip_http_flipped_p50', p2, 'ms', { n: flipped.length });
  emit('flip_http_flipped_over_single', p2 / p1, 'ratio');
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
