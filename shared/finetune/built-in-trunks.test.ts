import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import type { BackbonePackage } from '../backbone/backbone-package.js';
import { buildDefaultBackbone, DEFAULT_INPUT_SIZE, defaultBackboneId } from '../backbone/default-backbone.js';
import { cosine } from '../backbone/export-backbone.js';
import { type Backbone, loadBackbone } from '../backbone/load-backbone.js';
import { buildMnv2Backbone, MNV2_INPUT_SIZE, mnv2BackboneId } from '../backbone/mnv2-backbone.js';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { buildFineTuningFor, trunkBackboneId, trunkIdFor } from './built-in-trunks.js';
import { loadDualExtractor } from './dual-extractor.js';
import { UnsupportedTopError } from './finetune-errors.js';
import { MID_TRUNK_CUT } from './mid-trunk.js';
import { MNV2_TRUNK_CUT, TRUNK_MIN_COSINE_MEAN } from './spatial-trunk.js';
import { loadTop, parseTop, serializeTop, topFiles } from './top-package.js';
import type { TopSegment } from './top-segment.js';
import { createTrainableTop } from './trainable-top.js';

const BUILT_INS = [
  {
    name: 'the default (MobileNetV2 1.4, grid-pooled)',
    id: defaultBackboneId,
    build: buildDefaultBackbone,
    trunkCut: MID_TRUNK_CUT,
    inputSize: DEFAULT_INPUT_SIZE,
    shape: [10, 10, 136] as [number, number, number],
    featureDim: 4 * 816,
  },
  {
    name: 'MobileNetV2 1.0 (the previous default)',
    id: mnv2BackboneId,
    build: buildMnv2Backbone,
    trunkCut: MNV2_TRUNK_CUT,
    inputSize: MNV2_INPUT_SIZE,
    shape: [14, 14, 96] as [number, number, number],
    featureDim: 576,
  },
];

it('names the default backbone trunk by the default backbone', () => {
  expect(trunkIdFor(defaultBackboneId())).toBe(trunkBackboneId());
  expect(trunkIdFor(mnv2BackboneId())).not.toBe(trunkBackboneId());
  expect(trunkIdFor('imported-backbone.v1')).toBeUndefined();
});

describe.each(BUILT_INS)('the fine-tuning trunk of $name', (builtIn) => {
  let photos: Uint8Array[];
  let trunkPkg: BackbonePackage;
  let backbonePkg: BackbonePackage;
  let trunk: Backbone;
  let backbone: Backbone;

  let segment: TopSegment;

  beforeAll(async () => {
    await initTf();
    const files = clothingMini('eval').filter((_, i) => i % 6 === 0);
    photos = await Promise.all(
      files.map(async (f) => (await decodeImage(f.bytes, { size: builtIn.inputSize })).data),
    );
    const built = await buildFineTuningFor(builtIn.id(), { fidelityImages: photos })!;
    trunkPkg = built.trunk.pkg;
    segment = built.segment;
    backbonePkg = (await builtIn.build({ fidelityImages: photos })).pkg;
    trunk = await loadBackbone(trunkPkg, { warmup: false });
    backbone = await loadBackbone(backbonePkg, { warmup: false });
  }, 300_000);

  afterAll(() => {
    trunk?.dispose();
    backbone?.dispose();
  });

  it('is the backbone cut lower and left unpooled, under its own id', () => {
    expect(trunk.manifest.id).toBe(trunkIdFor(builtIn.id()));
    expect(trunk.manifest.feature).toEqual({
      layer: builtIn.trunkCut,
      pooling: 'none',
      dim: builtIn.shape[0] * builtIn.shape[1] * builtIn.shape[2],
    });
    expect(segment.inputShape).toEqual(builtIn.shape);
    expect(segment.featureDim).toBe(builtIn.featureDim);
    expect(backbone.featureDim).toBe(builtIn.featureDim);
    expect(trunk.manifest.quantization).toBe(backbone.manifest.quantization);
    expect(trunk.manifest.fidelity!.cosineMean).toBeGreaterThan(TRUNK_MIN_COSINE_MEAN);
  });

  it('feeds a top whose pretrained blocks reproduce the backbone feature, and predicts from it', async () => {
    const dim = builtIn.featureDim;
    const spatial = await trunk.extract(photos);
    const pooledByBackbone = await backbone.extract(photos);
    const k = 3;
    const top = createTrainableTop({
      segment,
      standardization: { mean: new Float32Array(dim), std: new Float32Array(dim).fill(1) },
      classifier: {
        type: 'softmax',
        dim,
        k,
        w: Float32Array.from({ length: dim * k }, (_, i) => Math.sin(i) * 0.05),
        b: new Float32Array(k),
      },
    });
    const x = tf.tensor4d(Float32Array.from(spatial.flatMap((s) => Array.from(s))), [
      photos.length,
      ...builtIn.shape,
    ]);
    const pooled = top.pooled(x);
    const rows = pooled.arraySync() as number[][];
    rows.forEach((row, i) => {
      // float32 top weights on the int8 trunk against the all-int8 backbone.
      expect(cosine(Float32Array.from(row), pooledByBackbone[i]!)).toBeGreaterThan(0.99);
    });
    const files = topFiles(
      serializeTop(top.snapshot(), {
        trunkId: trunk.manifest.id,
        trunkCut: segment.trunkCut,
        featureCut: segment.featureCut,
        inputShape: segment.inputShape,
        labels: ['a', 'b', 'c'],
      }),
    );
    tf.dispose([x, pooled]);
    top.dispose();
    const loaded = loadTop(parseTop(files.json, files.weights));
    const flat = new Float32Array(photos.length * loaded.inputDim);
    spatial.forEach((s, i) => {
      flat.set(s, i * loaded.inputDim);
    });
    const probs = loaded.predict(flat, photos.length);
    expect(probs).toHaveLength(photos.length * k);
    for (let i = 0; i < photos.length; i++) {
      expect(probs.subarray(i * k, (i + 1) * k).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    loaded.dispose();
  });

  it('extracts the pooled feature and the trunk activation in one pass, equal to running each', async () => {
    const dual = loadDualExtractor(backbonePkg, trunkPkg);
    const { pooled, spatial } = await dual.extract(photos.slice(0, 2));
    const byBackbone = await backbone.extract(photos.slice(0, 2));
    const byTrunk = await trunk.extract(photos.slice(0, 2));
    for (let i = 0; i < 2; i++) {
      expect(Array.from(pooled[i]!)).toEqual(Array.from(byBackbone[i]!));
      expect(Array.from(spatial[i]!)).toEqual(Array.from(byTrunk[i]!));
    }
    dual.dispose();
  });

  it('refuses to pair a backbone with a trunk whose weights differ', () => {
    const tampered = { ...trunkPkg, weights: trunkPkg.weights.slice() };
    tampered.weights[0] = (tampered.weights[0]! + 1) % 256;
    expect(() => loadDualExtractor(backbonePkg, tampered)).toThrow(UnsupportedTopError);
  });
});
