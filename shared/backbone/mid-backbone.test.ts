import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { FidelityError, UnsupportedGraphOpError } from './backbone-errors.js';
import { backboneIdSchema } from './backbone-manifest.js';
import { calibrationPhotosDir } from './calibration.js';
import { cosine, type ExportResult } from './export-backbone.js';
import { foldGraphModel } from './graph-model-fold.js';
import { loadBackbone } from './load-backbone.js';
import { buildMidBackbone, MID_CUT, MID_CUT_CANDIDATES, MID_PREFIX, midBackboneId } from './mid-backbone.js';
import { NSFWJS_PREPROCESSING, nsfwjsSourcePackage, readNsfwjsModel } from './nsfwjs-source.js';

const FLOOR = 0.99;
const root = calibrationPhotosDir();
const files = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(join(root, d.name)).map((f) => join(root, d.name, f)));
const decodeAll = (size: number) =>
  Promise.all(files.map(async (f) => (await decodeImage(new Uint8Array(readFileSync(f)), { size })).data));

let at224: Uint8Array[];
let built: ExportResult;

beforeAll(async () => {
  await initTf();
  at224 = await decodeAll(224);
  built = await buildMidBackbone({ fidelityImages: at224, inputSize: 224 });
});

describe('mobilenet_v2_mid converted to a Headstart graph', () => {
  it('matches the source graph model at the cut on the calibration photos, in float32 and in int8', async () => {
    const { pkg } = built;
    expect(pkg.manifest.feature).toEqual({ layer: MID_CUT, pooling: 'grid2', dim: 4 * 816 });
    expect(pkg.manifest.fidelity!.images).toBe(files.length);
    expect(pkg.manifest.fidelity!.cosineMin).toBeGreaterThanOrEqual(FLOOR);
    const source = await loadBackbone(
      nsfwjsSourcePackage('mobilenet_v2_mid', { layer: MID_PREFIX + MID_CUT, pooling: 'grid2', dim: 3264 }),
    );
    const f32 = await loadBackbone(
      (await buildMidBackbone({ fidelityImages: at224.slice(0, 4), inputSize: 224, quantization: 'float32' }))
        .pkg,
    );
    const int8 = await loadBackbone(pkg);
    const src = await source.extract(at224);
    const a = await f32.extract(at224);
    const b = await int8.extract(at224);
    for (let i = 0; i < at224.length; i++) {
      expect(cosine(src[i]!, a[i]!)).toBeGreaterThan(0.99999);
      expect(cosine(src[i]!, b[i]!)).toBeGreaterThanOrEqual(FLOOR);
    }
    for (const m of [source, f32, int8]) m.dispose();
  });

  it("folds the graph's input Mul/Sub into the preprocessing, so the first node is the first convolution", () => {
    const { pkg } = built;
    expect(pkg.graph!.nodes[0]).toMatchObject({ op: 'conv2d', name: 'Conv/Relu6', input: 'input' });
    const { scale, offset } = pkg.manifest.preprocessing;
    // The source maps [0,1] pixels to [-1,1] inside its graph: 255 * scale + offset must be 1, 0 must give -1.
    expect(255 * scale + offset).toBeCloseTo(1, 6);
    expect(offset).toBeCloseTo(-1, 6);
  });

  it('runs at 160 px, where the cut is an odd 5x5 map, still matching the source run at that size', async () => {
    const at160 = await decodeAll(160);
    const { pkg } = await buildMidBackbone({ fidelityImages: at160, inputSize: 160 });
    expect(pkg.manifest.id).toBe(midBackboneId({ inputSize: 160 }));
    expect(pkg.manifest.fidelity!.cosineMin).toBeGreaterThanOrEqual(FLOOR);
    const folded = foldGraphModel(readNsfwjsModel('mobilenet_v2_mid'), {
      cut: MID_CUT,
      pooling: 'none',
      inputSize: 160,
      prefix: MID_PREFIX,
      inputScale: NSFWJS_PREPROCESSING.scale,
      inputOffset: NSFWJS_PREPROCESSING.offset,
    });
    expect(folded.featureDim).toBe(5 * 5 * 816);
  });

  it('gives the same bytes, sha256 and id when built twice', async () => {
    const again = await buildMidBackbone({ fidelityImages: at224.slice(0, 3), inputSize: 224 });
    expect(again.pkg.manifest.id).toBe(built.pkg.manifest.id);
    expect(again.pkg.manifest.weightsSha256).toBe(built.pkg.manifest.weightsSha256);
    expect(Buffer.from(again.pkg.weights).equals(Buffer.from(built.pkg.weights))).toBe(true);
    expect(JSON.stringify(again.pkg.graph)).toBe(JSON.stringify(built.pkg.graph));
  });

  it('names every candidate cut with a valid id of at most 64 characters', () => {
    expect(built.pkg.manifest.id).toBe('mnv2x14-nsfwjs.ec13-dw.224.grid2.i8c');
    const ids = MID_CUT_CANDIDATES.flatMap((cut) =>
      (['avg', 'grid2'] as const).map((pooling) => midBackboneId({ cut, pooling, inputSize: 160 })),
    );
    for (const id of ids) expect(backboneIdSchema.safeParse(id).success, id).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('refuses an op it cannot convert with a typed error naming the op and the node', () => {
    const logits = `${MID_PREFIX}Logits/AvgPool`;
    let caught: unknown;
    try {
      foldGraphModel(readNsfwjsModel('mobilenet_v2_mid'), {
        cut: 'StatefulPartitionedCall/sequential/dense/BiasAdd',
        pooling: 'none',
        inputSize: 224,
        prefix: MID_PREFIX,
        inputScale: NSFWJS_PREPROCESSING.scale,
        inputOffset: NSFWJS_PREPROCESSING.offset,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsupportedGraphOpError);
    expect(caught).toMatchObject({ code: 'unsupported_graph_op', op: 'AvgPool', node: logits });
    expect((caught as Error).message).toContain('AvgPool');
    expect((caught as Error).message).toContain(logits);
  });

  it('refuses to publish an export below its fidelity floor', async () => {
    await expect(
      buildMidBackbone({
        fidelityImages: at224.slice(0, 3),
        inputSize: 224,
        quantization: 'uint8-per-tensor',
        minCosineMean: 1.1,
      }),
    ).rejects.toBeInstanceOf(FidelityError);
  });
});
