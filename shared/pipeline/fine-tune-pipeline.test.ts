import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { installBackbone } from '../../test/support/publish-test-model.js';
import { nextSequencer } from '../../test/support/s3-events.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { testTrunk } from '../../test/support/test-trunk.js';
import { type Backbone, loadBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import {
  buildDefaultSegment,
  chooseTrainingMode,
  type DualExtractor,
  decodeSpatialFeatures,
  loadTop,
  parseTop,
  saveTrunk,
  spatialFeatureKey,
  type TopSegment,
  trunkBackboneId,
} from '../finetune/index.js';
import { createEdgeApp, storeBackboneLoader } from '../http/index.js';
import { layout } from '../layout/index.js';
import { decodeEvaluation, readPointer, readVersion, TOP_JSON, TOP_WEIGHTS } from '../models/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createUploadExtractor } from './extract-uploads.js';
import { writeRetrainRequest } from './retrain-requests.js';
import {
  createProjectTrainer,
  type ModeDecision,
  type TrainProjectDeps,
  trainingBackbone,
} from './train-project.js';
import { dualExtractorFromStore, trunkDepsFromStore } from './trunk-deps.js';

let backbone: Backbone;
let segment: TopSegment;
const TRUNK_SHAPE = [10, 10, 136] as const;
const fast = { headTypes: ['softmax' as const], softmaxL2: [1e-3, 1e-2] };

beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
  segment = await buildDefaultSegment();
});

const disposers: (() => void)[] = [];
afterAll(() => {
  for (const d of disposers) d();
  backbone?.dispose();
});

/** A store with the default backbone and its trunk published, as the deploy step (or `start`) leaves it. */
async function publishedStore(): Promise<{ store: ObjectStore; dual: DualExtractor }> {
  const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-ft-')) });
  const pkg = await testBackbone();
  await installBackbone(store, pkg);
  await saveTrunk(store, await testTrunk(), segment);
  const dual = await dualExtractorFromStore(store, pkg);
  if (!dual) throw new Error('the trunk was not found after publishing it');
  disposers.push(() => dual.dispose());
  return { store, dual };
}

async function upload(
  store: ObjectStore,
  dual: DualExtractor,
  project: string,
  photos: { label: string; path: string; bytes: Uint8Array }[],
  settings?: Record<string, unknown>,
) {
  if (settings) await store.put(layout.projectSettings(project), JSON.stringify(settings));
  const index = createDatasetIndex(store);
  const extractor = createUploadExtractor({
    store,
    backbone,
    dual,
    index,
    requestRetrain: async () => {},
  });
  const outcomes = [];
  for (const p of photos) {
    const key = `uploads/${project}/${p.label}/${p.path.split('/').pop()}`;
    await store.put(key, p.bytes);
    outcomes.push(
      await extractor.handle({ type: 'created', key, sequencer: nextSequencer(), eventTime: '' }),
    );
  }
  return { index, outcomes };
}

async function trainer(store: ObjectStore, extra: Partial<TrainProjectDeps> = {}) {
  const trunk = await trunkDepsFromStore(store, backbone.manifest.id);
  if (!trunk) throw new Error('no trunk deps');
  return createProjectTrainer({
    store,
    index: createDatasetIndex(store),
    backbone: trainingBackbone(backbone),
    trunk,
    trainOptions: fast,
    fineTuneOptions: { maxEpochs: 2, patience: 1 },
    ...extra,
  });
}

async function evaluation(store: ObjectStore, project: string, version: string) {
  const { files, manifest } = await readVersion(store, project, version);
  const json = JSON.parse(new TextDecoder().decode(files.get('evaluation.json')!)) as {
    mode: ModeDecision;
  };
  return { manifest, files, mode: json.mode };
}

const all = () => [...clothingMini('train'), ...clothingMini('eval')];

describe('fine-tuning in the pipeline', () => {
  it('caches each photo trunk activation once, content-addressed under the trunk id, beside its pooled feature', async () => {
    const { store, dual } = await publishedStore();
    const photos = clothingMini('train').slice(0, 3);
    const { outcomes } = await upload(store, dual, 'cache', photos);
    const again = await upload(store, dual, 'cache2', photos.slice(0, 1));
    for (const o of outcomes) {
      expect(o.status).toBe('indexed');
      if (o.status !== 'indexed') continue;
      // The pooled feature, the trunk's activation, and the mirror's pooled feature.
      expect(o.computed).toBe(3);
      const spatial = await store.get(spatialFeatureKey(trunkBackboneId(), o.sha256));
      expect(spatial?.key).toBe(`features/${trunkBackboneId()}/${o.sha256}`);
      const values = decodeSpatialFeatures(spatial!.body, trunkBackboneId(), TRUNK_SHAPE);
      expect(values.length).toBe(10 * 10 * 136);
      expect(await store.head(layout.feature(backbone.manifest.id, o.sha256))).toBeTruthy();
    }
    // The same photo under another project and name is neither extracted nor stored again.
    expect(again.outcomes[0]).toMatchObject({ status: 'indexed', computed: 0 });
  });

  it('caches no trunk activation for a project that trains heads only', async () => {
    const { store, dual } = await publishedStore();
    const { outcomes } = await upload(store, dual, 'heads', clothingMini('train').slice(0, 2), {
      trainingMode: 'head',
    });
    for (const o of outcomes) {
      expect(o).toMatchObject({ status: 'indexed', computed: 2 });
      if (o.status === 'indexed') {
        expect(await store.head(spatialFeatureKey(trunkBackboneId(), o.sha256))).toBeUndefined();
      }
    }
  });

  it('chooses the mode on validation, recording both scores, and writes the chosen kind of version', async () => {
    const { store, dual } = await publishedStore();
    await upload(store, dual, 'auto', all());
    await writeRetrainRequest(store, 'auto', { immediate: true });
    const outcome = await (await trainer(store)).run('auto', { ignoreQuietWindow: true });
    expect(outcome.status).toBe('promoted');
    if (outcome.status !== 'promoted') return;
    const { manifest, mode } = await evaluation(store, 'auto', outcome.version);
    expect(mode.setting).toBe('auto');
    expect(mode.fineTuned).toBeDefined();
    expect(mode.chosen).toBe(chooseTrainingMode(mode.headOnly, mode.fineTuned));
    expect(outcome.mode).toBe(mode.chosen);
    expect(manifest.head.format).toBe(mode.chosen === 'finetune' ? 'headstart-finetuned-top' : 'tfjs-layers');
    expect(manifest.metrics.macroF1).toBeCloseTo(
      mode.chosen === 'finetune' ? mode.fineTuned!.macroF1 : mode.headOnly.macroF1,
      10,
    );
  }, 180_000);

  it('writes a forced fine-tuned version whose manifest names the trunk and whose top predicts', async () => {
    const { store, dual } = await publishedStore();
    await upload(store, dual, 'forced', all(), { trainingMode: 'finetune' });
    await writeRetrainRequest(store, 'forced', { immediate: true });
    const before = tf.memory().numTensors;
    const outcome = await (await trainer(store)).run('forced', { ignoreQuietWindow: true });
    expect(tf.memory().numTensors).toBe(before);
    expect(outcome).toMatchObject({ status: 'promoted', mode: 'finetune' });
    const pointer = await readPointer(store, 'forced');
    const { manifest, files, mode } = await evaluation(store, 'forced', pointer!.pointer.version);
    expect(mode.reason).toMatch(/forced/);
    expect(manifest.head.format).toBe('headstart-finetuned-top');
    expect(manifest.backbone).toMatchObject({ id: trunkBackboneId(), featureDim: 10 * 10 * 136 });
    expect(Object.keys(manifest.head.files).sort()).toEqual(
      ['evaluation.json', 'outlier.bin', 'outlier.json', 'suspects.json', TOP_JSON, TOP_WEIGHTS].sort(),
    );
    // The fine-tuned top's own validation predictions, photo by photo, each scored by its outlier detector.
    const evaluated = decodeEvaluation(files.get('evaluation.json')!, 'forced');
    const examples = evaluated.validationExamples!;
    expect(examples).toHaveLength(manifest.metrics.n);
    expect(examples.every((e) => typeof e.outlierScore === 'number')).toBe(true);
    const { outlier } = JSON.parse(new TextDecoder().decode(files.get('evaluation.json')!)) as {
      outlier: { method: string; acceptedRate: number; threshold: number };
    };
    expect(outlier.method).toBe('mahalanobis+residual+doubt');
    expect(outlier.acceptedRate).toBeGreaterThanOrEqual(0.95);
    const hits = examples.filter((e) => e.label === e.predicted).length;
    expect(hits / examples.length).toBeCloseTo(manifest.metrics.accuracy, 10);
    // Served, a validation photo gets the score training recorded for it (from the stored float16 activation).
    const api = createEdgeApp({
      store,
      backbone: async () => backbone,
      backboneById: storeBackboneLoader(store),
      config: { requireKeys: false },
    });
    const photo = examples[0]!;
    const res = await api.app.request('/v1/projects/forced/predict', {
      method: 'POST',
      body: (await store.get(photo.key))!.body as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'image/jpeg' },
    });
    const served = (await res.json()) as {
      unknown: boolean | null;
      outlierScore: number | null;
      model: { outlierThreshold: number | null };
    };
    expect(res.status, JSON.stringify(served)).toBe(200);
    expect(served.model.outlierThreshold).toBeCloseTo(outlier.threshold, 5);
    expect(served.unknown).toBe(served.outlierScore! > outlier.threshold);
    expect(Math.abs(served.outlierScore! - photo.outlierScore!)).toBeLessThan(0.05 * photo.outlierScore!);
    const top = loadTop(parseTop(files.get(TOP_JSON)!, files.get(TOP_WEIGHTS)!));
    try {
      expect(top.trunkId).toBe(manifest.backbone.id);
      expect(top.labels).toEqual(manifest.labels);
      const probs = top.predict(new Float32Array(top.inputDim), 1);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    } finally {
      top.dispose();
    }
  }, 180_000);

  it('trains a head, saying why, when a project has more photos than fine-tuning takes', async () => {
    const { store, dual } = await publishedStore();
    await upload(store, dual, 'large', all(), { trainingMode: 'finetune' });
    await writeRetrainRequest(store, 'large', { immediate: true });
    const outcome = await (await trainer(store, { fineTuneMaxExamples: 60 })).run('large', {
      ignoreQuietWindow: true,
    });
    expect(outcome).toMatchObject({ status: 'promoted', mode: 'head' });
    if (outcome.status !== 'promoted') return;
    const { mode } = await evaluation(store, 'large', outcome.version);
    expect(mode.reason).toBe(
      "68 photos are more than fine-tuning takes (60: memory and the function's time limit)",
    );
  }, 180_000);

  it('trains a head, saying why, when some photos have no cached trunk activation', async () => {
    const { store, dual } = await publishedStore();
    await upload(store, dual, 'mixed', all().slice(0, 40), { trainingMode: 'head' });
    await upload(store, dual, 'mixed', all().slice(40), { trainingMode: 'finetune' });
    await writeRetrainRequest(store, 'mixed', { immediate: true });
    const outcome = await (await trainer(store)).run('mixed', { ignoreQuietWindow: true });
    expect(outcome).toMatchObject({ status: 'promoted', mode: 'head' });
    if (outcome.status !== 'promoted') return;
    const { manifest, mode } = await evaluation(store, 'mixed', outcome.version);
    expect(manifest.head.format).toBe('tfjs-layers');
    expect(mode.reason).toMatch(/^40 of 68 photos have no cached/);
  }, 180_000);
});
