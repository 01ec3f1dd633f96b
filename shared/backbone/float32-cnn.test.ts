import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { trainTinyCnn } from '../../test/support/tiny-cnn.js';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { exportBackbone } from './export-backbone.js';

// Runs on the cpu backend: training the float32 CNN needs gradient kernels the wasm backend lacks.
const SIZE = 32;
let model: tfl.LayersModel;
let photos: Uint8Array[];

beforeAll(async () => {
  await initTf({ backend: 'cpu' });
  const train = clothingMini('train');
  const labels = [...new Set(train.map((t) => t.label))];
  const pixels = await Promise.all(train.map(async (t) => (await decodeImage(t.bytes, { size: SIZE })).data));
  model = await trainTinyCnn(
    pixels,
    train.map((t) => labels.indexOf(t.label)),
    SIZE,
  );
  photos = await Promise.all(
    clothingMini('eval').map(async (f) => (await decodeImage(f.bytes, { size: SIZE })).data),
  );
});

const exportAs = (quantization: 'float32' | 'float16' | 'int8-per-channel' | 'uint8-per-tensor') =>
  exportBackbone(
    { model, id: 'tiny-cnn', weightsSha256: '0'.repeat(64) },
    {
      id: `tiny-cnn-${quantization}`,
      cut: 'features',
      quantization,
      scale: 1 / 255,
      offset: 0,
      fidelityImages: photos,
      minCosineMean: 0,
    },
  );

describe('quantizer on a float32 CNN', () => {
  it('folds trained batch norm exactly in float32', async () => {
    const { cosines } = await exportAs('float32');
    expect(Math.min(...cosines)).toBeGreaterThan(0.99999);
  });

  it('keeps per-channel int8 and float16 features faithful, at a quarter and a half of the bytes', async () => {
    const f32 = await exportAs('float32');
    const i8 = await exportAs('int8-per-channel');
    const f16 = await exportAs('float16');
    expect(i8.pkg.manifest.fidelity!.cosineMean).toBeGreaterThan(0.99);
    expect(f16.pkg.manifest.fidelity!.cosineMean).toBeGreaterThan(0.9999);
    expect(i8.pkg.weights.byteLength / f32.pkg.weights.byteLength).toBeLessThan(0.35);
    expect(f16.pkg.weights.byteLength / f32.pkg.weights.byteLength).toBeCloseTo(0.5, 1);
  });
});
