import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { parseBackbone, serializeBackbone } from './backbone-package.js';
import { exportBackbone } from './export-backbone.js';
import { gridAvgPool2, gridCellBounds } from './grid-pool.js';
import { type HeadstartGraph, runGraph } from './headstart-graph.js';
import { backboneFromLayersModel, loadBackbone } from './load-backbone.js';
import { loadNsfwjsMobileNetV2, NSFWJS_PREPROCESSING, nsfwjsSourcePackage } from './nsfwjs-source.js';

beforeAll(async () => {
  await initTf();
});

/** A [1, h, w, 2] map whose channel 0 at (r, q) is r*10 + q and channel 1 is its negative. */
function ramp(h: number, w: number): tf.Tensor4D {
  const v: number[] = [];
  for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) v.push(r * 10 + q, -(r * 10 + q));
  return tf.tensor4d(v, [1, h, w, 2]);
}

/** Mean of channel 0 of `ramp` over rows [r0, r1) and columns [c0, c1), by hand. */
function rampMean(r0: number, r1: number, c0: number, c1: number): number {
  let s = 0;
  for (let r = r0; r < r1; r++) for (let q = c0; q < c1; q++) s += r * 10 + q;
  return s / ((r1 - r0) * (c1 - c0));
}

describe('grid2 pooling', () => {
  it('averages each quarter of an even map, cells row-major with channels inside', async () => {
    const x = ramp(4, 4);
    const y = gridAvgPool2(x);
    expect(y.shape).toEqual([1, 8]);
    const tl = rampMean(0, 2, 0, 2);
    const tr = rampMean(0, 2, 2, 4);
    const bl = rampMean(2, 4, 0, 2);
    const br = rampMean(2, 4, 2, 4);
    expect(Array.from(await y.data())).toEqual([tl, -tl, tr, -tr, bl, -bl, br, -br]);
    x.dispose();
    y.dispose();
  });

  it('shares the centre row and column of an odd map between both halves, as adaptive pooling does', async () => {
    expect(gridCellBounds(7, 2, 0)).toEqual([0, 4]);
    expect(gridCellBounds(7, 2, 1)).toEqual([3, 7]);
    expect(gridCellBounds(14, 2, 1)).toEqual([7, 14]);
    const x = ramp(5, 3);
    const y = await gridAvgPool2(x).array();
    // rows [0,3) and [2,5); columns [0,2) and [1,3)
    const expected = [rampMean(0, 3, 0, 2), rampMean(0, 3, 1, 3), rampMean(2, 5, 0, 2), rampMean(2, 5, 1, 3)];
    expected.forEach((m, k) => {
      expect(y[0]![2 * k]).toBeCloseTo(m, 5);
      expect(y[0]![2 * k + 1]).toBeCloseTo(-m, 5);
    });
    x.dispose();
  });

  it('gives a mirrored map the left and right cells swapped, even at an odd width', async () => {
    const x = tf.randomUniform([2, 7, 7, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const flipped = tf.reverse(x, 2);
    const a = await gridAvgPool2(x).array();
    const b = await gridAvgPool2(flipped).array();
    const c = 3;
    for (let n = 0; n < 2; n++) {
      for (const [from, to] of [
        [0, 1],
        [1, 0],
        [2, 3],
        [3, 2],
      ] as const) {
        for (let j = 0; j < c; j++) expect(b[n]![to * c + j]).toBeCloseTo(a[n]![from * c + j]!, 5);
      }
    }
    x.dispose();
    flipped.dispose();
  });

  it('leaves no tensors behind, in a graph node as on its own', () => {
    const x = ramp(7, 7);
    const graph: HeadstartGraph = {
      input: 'input',
      output: 'pool',
      nodes: [{ op: 'grid_avg_pool', name: 'pool', input: 'input' }],
    };
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      gridAvgPool2(x).dispose();
      runGraph(graph, new Map(), x).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('grid2 pooling through the loaders and the layers export', () => {
  let source: Awaited<ReturnType<typeof loadNsfwjsMobileNetV2>>;
  let photos: Uint8Array[];
  beforeAll(async () => {
    source = await loadNsfwjsMobileNetV2();
    const files = clothingMini('eval').filter((_, i) => i % 4 === 0);
    photos = await Promise.all(files.map(async (f) => (await decodeImage(f.bytes, { size: 224 })).data));
  });

  it('exports a layers model with a grid_avg_pool node whose features match the grid-pooled source', async () => {
    const cut = 'block_13_depthwise_relu';
    const { pkg, cosines } = await exportBackbone(
      { model: source.model, id: 'nsfwjs-mobilenet-v2', weightsSha256: source.weightsSha256 },
      {
        id: 'test-grid2',
        cut,
        pooling: 'grid2',
        quantization: 'float32',
        scale: NSFWJS_PREPROCESSING.scale,
        offset: NSFWJS_PREPROCESSING.offset,
        fidelityImages: photos,
      },
    );
    expect(pkg.manifest.feature).toEqual({ layer: cut, pooling: 'grid2', dim: 4 * 576 });
    expect(pkg.graph!.nodes.at(-1)).toMatchObject({ op: 'grid_avg_pool', input: 'block_13_depthwise' });
    expect(Math.min(...cosines)).toBeGreaterThan(0.99999);
    const stored = serializeBackbone(pkg);
    const reloaded = await loadBackbone(parseBackbone(stored.json, stored.weights));
    const layers = backboneFromLayersModel(source.model, pkg.manifest);
    const graphSource = await loadBackbone(
      nsfwjsSourcePackage('mobilenet_v2', { layer: cut, pooling: 'grid2', dim: 4 * 576 }),
    );
    const [a] = await reloaded.extract(photos.slice(0, 1));
    const [b] = await layers.extract(photos.slice(0, 1));
    const [c] = await graphSource.extract(photos.slice(0, 1));
    expect(a).toHaveLength(2304);
    let maxDiff = 0;
    for (let i = 0; i < 2304; i++)
      maxDiff = Math.max(maxDiff, Math.abs(a![i]! - b![i]!), Math.abs(b![i]! - c![i]!));
    expect(maxDiff).toBeLessThan(1e-3);
    reloaded.dispose();
    graphSource.dispose();
  });
});
