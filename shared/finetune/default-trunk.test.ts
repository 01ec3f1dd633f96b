import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import type { BackbonePackage } from '../backbone/backbone-package.js';
import { buildDefaultBackbone } from '../backbone/default-backbone.js';
import { cosine } from '../backbone/export-backbone.js';
import { type Backbone, loadBackbone } from '../backbone/load-backbone.js';
import { loadNsfwjsMobileNetV2 } from '../backbone/nsfwjs-source.js';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { loadDualExtractor } from './dual-extractor.js';
import { UnsupportedTopError } from './finetune-errors.js';
import {
  buildDefaultTrunk,
  DEFAULT_FEATURE_CUT,
  DEFAULT_TRUNK_CUT,
  TRUNK_MIN_COSINE_MEAN,
  trunkBackboneId,
} from './spatial-trunk.js';
import { loadTop, parseTop, serializeTop, topFiles } from './top-package.js';
import { foldTopSegment } from './top-segment.js';
import { createTrainableTop } from './trainable-top.js';

let photos: Uint8Array[];
let trunkPkg: BackbonePackage;
let backbonePkg: BackbonePackage;
let trunk: Backbone;
let backbone: Backbone;

beforeAll(async () => {
  await initTf();
  const files = clothingMini('eval').filter((_, i) => i % 6 === 0);
  photos = await Promise.all(files.map(async (f) => (await decodeImage(f.bytes, { size: 224 })).data));
  trunkPkg = (await buildDefaultTrunk({ fidelityImages: photos })).pkg;
  backbonePkg = (await buildDefaultBackbone({ fidelityImages: photos })).pkg;
  trunk = await loadBackbone(trunkPkg, { warmup: false });
  backbone = await loadBackbone(backbonePkg, { warmup: false });
});

afterAll(() => {
  trunk?.dispose();
  backbone?.dispose();
});

describe('default trunk', () => {
  it('is the default backbone cut lower and left unpooled, under its own id', () => {
    expect(trunk.manifest.id).toBe(trunkBackboneId());
    expect(trunk.manifest.feature).toEqual({ layer: DEFAULT_TRUNK_CUT, pooling: 'none', dim: 14 * 14 * 96 });
    expect(trunk.manifest.quantization).toBe(backbone.manifest.quantization);
    expect(trunk.manifest.fidelity!.cosineMean).toBeGreaterThan(TRUNK_MIN_COSINE_MEAN);
  });

  it('feeds a top whose pretrained blocks reproduce the default backbone feature, and predicts from it', async () => {
    const { model } = await loadNsfwjsMobileNetV2();
    const segment = foldTopSegment(model, { trunkCut: DEFAULT_TRUNK_CUT, featureCut: DEFAULT_FEATURE_CUT });
    model.dispose();
    const spatial = await trunk.extract(photos);
    const pooledByBackbone = await backbone.extract(photos);
    const k = 3;
    const top = createTrainableTop({
      segment,
      standardization: { mean: new Float32Array(576), std: new Float32Array(576).fill(1) },
      classifier: {
        type: 'softmax',
        dim: 576,
        k,
        w: Float32Array.from({ length: 576 * k }, (_, i) => Math.sin(i) * 0.05),
        b: new Float32Array(k),
      },
    });
    const x = tf.tensor4d(Float32Array.from(spatial.flatMap((s) => Array.from(s))), [
      photos.length,
      14,
      14,
      96,
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
        trunkCut: DEFAULT_TRUNK_CUT,
        featureCut: DEFAULT_FEATURE_CUT,
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
