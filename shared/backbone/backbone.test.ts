import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { BackboneInputError, FidelityError, InvalidBackboneError } from './backbone-errors.js';
import { parseBackbone, serializeBackbone } from './backbone-package.js';
import { cosine, exportBackbone } from './export-backbone.js';
import { backboneFromLayersModel, loadBackbone } from './load-backbone.js';
import { loadNsfwjsMobileNetV2, NSFWJS_PREPROCESSING, nsfwjsSourcePackage } from './nsfwjs-source.js';

type Source = Awaited<ReturnType<typeof loadNsfwjsMobileNetV2>>;
let source: Source;
let photos: Uint8Array[];

beforeAll(async () => {
  await initTf();
  source = await loadNsfwjsMobileNetV2();
  const files = clothingMini('eval').filter((_, i) => i % 3 === 0);
  photos = await Promise.all(files.map(async (f) => (await decodeImage(f.bytes, { size: 224 })).data));
});

const exportAt = (
  cut: string,
  quantization: 'float32' | 'int8-per-channel' | 'uint8-per-tensor',
  extra = {},
) =>
  exportBackbone(
    { model: source.model, id: 'nsfwjs-mobilenet-v2', weightsSha256: source.weightsSha256 },
    {
      id: `test-${cut.replace(/_/g, '-')}`,
      cut,
      quantization,
      scale: NSFWJS_PREPROCESSING.scale,
      offset: NSFWJS_PREPROCESSING.offset,
      fidelityImages: photos,
      ...extra,
    },
  );

describe('exported backbone', () => {
  it('matches the source model exactly when batch norm is folded but weights stay float32', async () => {
    const { pkg, cosines } = await exportAt('flatten_1', 'float32');
    expect(Math.min(...cosines)).toBeGreaterThan(0.99999);
    const exported = await loadBackbone(pkg);
    const src = backboneFromLayersModel(source.model, pkg.manifest);
    const [a] = await exported.extract(photos.slice(0, 1));
    const [b] = await src.extract(photos.slice(0, 1));
    expect(a).toHaveLength(1280);
    let maxDiff = 0;
    for (let i = 0; i < 1280; i++) maxDiff = Math.max(maxDiff, Math.abs(a![i]! - b![i]!));
    expect(maxDiff).toBeLessThan(1e-3);
    exported.dispose();
  });

  it('stops at the cut: nothing above a lower cut is in the graph', async () => {
    const { pkg } = await exportAt('block_13_depthwise_relu', 'int8-per-channel');
    expect(pkg.manifest.feature.dim).toBe(576);
    const names = pkg.graph!.nodes.map((n) => n.name);
    expect(names).toContain('block_13_depthwise');
    expect(
      names.some((n) => n.startsWith('block_14') || n.startsWith('Conv_1') || n.startsWith('dense')),
    ).toBe(false);
  });

  it('keeps per-channel int8 features close to the source on real photos and records the fidelity', async () => {
    const { pkg, cosines, float32Bytes } = await exportAt('block_13_depthwise_relu', 'int8-per-channel');
    expect(pkg.manifest.fidelity!.cosineMean).toBeGreaterThan(0.995);
    expect(pkg.manifest.fidelity!.cosineMin).toBe(Math.min(...cosines));
    expect(pkg.weights.byteLength / float32Bytes).toBeLessThan(0.27);
  });

  it("records how often a trained head's top-1 agrees between source and export features", async () => {
    const evalSet = clothingMini('eval');
    const all = await Promise.all(evalSet.map(async (f) => (await decodeImage(f.bytes, { size: 224 })).data));
    const { pkg } = await exportAt('block_13_depthwise_relu', 'int8-per-channel', {
      fidelityImages: all,
      fidelityLabels: evalSet.map((f) => f.label),
    });
    expect(pkg.manifest.fidelity!.headTop1Agreement).toBeGreaterThanOrEqual(0.95);
  });

  it('refuses to export below the fidelity threshold, naming the measured cosine', async () => {
    await expect(exportAt('flatten_1', 'uint8-per-tensor', { minCosineMean: 0.99 })).rejects.toThrow(
      FidelityError,
    );
    await expect(exportAt('flatten_1', 'uint8-per-tensor', { minCosineMean: 0.99 })).rejects.toThrow(
      /mean feature cosine 0\.\d+/,
    );
  });

  it('runs at a smaller input size with the same feature dimension', async () => {
    const small = await Promise.all(
      clothingMini('eval')
        .slice(0, 3)
        .map(async (f) => (await decodeImage(f.bytes, { size: 160 })).data),
    );
    const { pkg } = await exportAt('block_13_depthwise_relu', 'int8-per-channel', {
      inputSize: 160,
      fidelityImages: small,
    });
    const b = await loadBackbone(pkg);
    const [f] = await b.extract(small.slice(0, 1));
    expect(f).toHaveLength(576);
    await expect(b.extract([photos[0]!])).rejects.toThrow(BackboneInputError);
    b.dispose();
  });

  it('round-trips through its stored form and rejects weights that do not match the sha256', async () => {
    const { pkg } = await exportAt('block_13_depthwise_relu', 'int8-per-channel');
    const { json, weights } = serializeBackbone(pkg);
    const again = await loadBackbone(parseBackbone(json, weights));
    const original = await loadBackbone(pkg);
    const [a] = await again.extract(photos.slice(0, 1));
    const [b] = await original.extract(photos.slice(0, 1));
    expect(a).toEqual(b);
    // What fs.readFile returns: a Buffer that is a view into a larger shared pool.
    const pooled = Buffer.concat([Buffer.alloc(100, 7), Buffer.from(weights)]).subarray(100);
    const fromFile = await loadBackbone(parseBackbone(Buffer.from(json), pooled));
    expect((await fromFile.extract(photos.slice(0, 1)))[0]).toEqual(a);
    fromFile.dispose();
    const tampered = weights.slice();
    tampered[100] = (tampered[100]! + 1) % 256;
    expect(() => parseBackbone(json, tampered)).toThrow(/sha256/);
    again.dispose();
    original.dispose();
  });

  it('does not leak tensors across 50 extractions', async () => {
    const { pkg } = await exportAt('block_13_depthwise_relu', 'int8-per-channel');
    const b = await loadBackbone(pkg);
    await b.extract(photos.slice(0, 2));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await b.extract(photos.slice(0, 2));
    expect(tf.memory().numTensors).toBe(before);
    b.dispose();
  });

  it('refuses a cut layer that the model does not have', async () => {
    await expect(exportAt('no_such_layer', 'int8-per-channel')).rejects.toThrow(InvalidBackboneError);
  });
});

describe('source models as shipped', () => {
  it('cuts the layers model at a named layer and pools it', async () => {
    const b = await loadBackbone(
      nsfwjsSourcePackage('mobilenet_v2', { layer: 'block_13_expand_relu', pooling: 'avg', dim: 576 }),
    );
    const [f] = await b.extract(photos.slice(0, 1));
    expect(f).toHaveLength(576);
    b.dispose();
  });

  it('executes the graph model to a named node', async () => {
    const node =
      'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/feature_vector/SpatialSqueeze';
    const b = await loadBackbone(
      nsfwjsSourcePackage('mobilenet_v2_mid', { layer: node, pooling: 'none', dim: 1792 }),
    );
    const feats = await b.extract(photos.slice(0, 3));
    expect(feats).toHaveLength(3);
    expect(feats[0]).toHaveLength(1792);
    // Different photos give different features; the same photo gives the same.
    expect(cosine(feats[0]!, feats[1]!)).toBeLessThan(0.99);
    const [again] = await b.extract(photos.slice(0, 1));
    expect(cosine(again!, feats[0]!)).toBeGreaterThan(0.99999);
    b.dispose();
  });
});
