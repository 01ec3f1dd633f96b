import * as tf from '@tensorflow/tfjs-core';
import { BackboneInputError } from '../backbone/backbone-errors.js';
import type { BackbonePackage } from '../backbone/backbone-package.js';
import { type GraphNode, type HeadstartGraph, runGraph } from '../backbone/headstart-graph.js';
import { decodeWeights } from '../backbone/quantize.js';
import { UnsupportedTopError } from './finetune-errors.js';

/**
 * One forward pass, two cached features: the default backbone's pooled feature (head-only training) and its
 * trunk's spatial activation (fine-tuning). The trunk is the backbone's first part with the same weights, so a
 * precompute function serving both modes need not run the image twice.
 */
export interface DualExtractor {
  readonly backboneId: string;
  readonly trunkId: string;
  readonly featureDim: number;
  readonly trunkDim: number;
  /** RGB HWC uint8 images at the backbone's input size; one pooled feature and one activation per image. */
  extract(images: readonly Uint8Array[]): Promise<{ pooled: Float32Array[]; spatial: Float32Array[] }>;
  dispose(): void;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameNode(a: GraphNode, b: GraphNode | undefined): boolean {
  return !!b && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Checks that `trunk` is a prefix of `backbone` (same nodes, same stored weight bytes, same preprocessing) and
 * splits the backbone's graph at the trunk's output. Refused otherwise: features from a mismatched pair would
 * be cached under ids that claim otherwise.
 */
export function loadDualExtractor(
  backbone: BackbonePackage,
  trunk: BackbonePackage,
  options: { maxBatch?: number } = {},
): DualExtractor {
  const bg = backbone.graph;
  const tg = trunk.graph;
  if (
    backbone.manifest.format !== 'headstart-graph' ||
    trunk.manifest.format !== 'headstart-graph' ||
    !bg ||
    !tg
  ) {
    throw new UnsupportedTopError('both backbones must be headstart graphs');
  }
  const bm = backbone.manifest;
  const tm = trunk.manifest;
  if (
    bm.inputSize !== tm.inputSize ||
    JSON.stringify(bm.preprocessing) !== JSON.stringify(tm.preprocessing) ||
    tm.feature.pooling !== 'none'
  ) {
    throw new UnsupportedTopError(`'${tm.id}' is not an unpooled trunk of '${bm.id}' at the same input`);
  }
  const byName = new Map(bg.nodes.map((n) => [n.name, n]));
  const bSpecs = new Map((backbone.weightSpecs ?? []).map((s) => [s.name, s]));
  const tSpecs = new Map((trunk.weightSpecs ?? []).map((s) => [s.name, s]));
  const bytes = (pkg: BackbonePackage, s: { byteOffset: number; byteLength: number }) =>
    pkg.weights.subarray(s.byteOffset, s.byteOffset + s.byteLength);
  for (const node of tg.nodes) {
    if (!sameNode(node, byName.get(node.name))) {
      throw new UnsupportedTopError(`'${tm.id}' node '${node.name}' is not the same in '${bm.id}'`);
    }
    if (node.op !== 'conv2d' && node.op !== 'depthwise_conv2d') continue;
    for (const w of [node.kernel, node.bias]) {
      const a = bSpecs.get(w);
      const b = tSpecs.get(w);
      const same =
        a &&
        b &&
        JSON.stringify({ ...a, byteOffset: 0 }) === JSON.stringify({ ...b, byteOffset: 0 }) &&
        sameBytes(bytes(backbone, a), bytes(trunk, b));
      if (!same) throw new UnsupportedTopError(`weight '${w}' differs between '${tm.id}' and '${bm.id}'`);
    }
  }
  const below = new Set(tg.nodes.map((n) => n.name));
  const rename = (ref: string, reader: string) => {
    if (ref === tg.output) return 'input';
    if (below.has(ref) || ref === 'input') {
      throw new UnsupportedTopError(`node '${reader}' reads '${ref}' across the trunk's cut`);
    }
    return ref;
  };
  const rest: HeadstartGraph = {
    input: 'input',
    output: bg.output,
    nodes: bg.nodes
      .filter((n) => !below.has(n.name))
      .map((n) =>
        n.op === 'add'
          ? { ...n, inputs: [rename(n.inputs[0], n.name), rename(n.inputs[1], n.name)] as [string, string] }
          : { ...n, input: rename(n.input, n.name) },
      ),
  };
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, w] of decodeWeights(backbone.weightSpecs!, backbone.weights)) {
    tensors.set(name, tf.tensor(w.values, w.shape, 'float32'));
  }
  const size = bm.inputSize;
  const px = size * size * 3;
  const { scale, offset } = bm.preprocessing;
  const maxBatch = options.maxBatch ?? 16;
  return {
    backboneId: bm.id,
    trunkId: tm.id,
    featureDim: bm.feature.dim,
    trunkDim: tm.feature.dim,
    async extract(images) {
      images.forEach((img, i) => {
        if (img.length !== px) {
          throw new BackboneInputError(
            `image ${i} has ${img.length} values; '${bm.id}' takes ${size}x${size}x3`,
          );
        }
      });
      const pooled: Float32Array[] = [];
      const spatial: Float32Array[] = [];
      for (let start = 0; start < images.length; start += maxBatch) {
        const chunk = images.slice(start, start + maxBatch);
        const buf = new Float32Array(chunk.length * px);
        chunk.forEach((img, i) => {
          for (let j = 0; j < px; j++) buf[i * px + j] = img[j]! * scale + offset;
        });
        const [s, p] = tf.tidy(() => {
          const mid = runGraph(tg, tensors, tf.tensor4d(buf, [chunk.length, size, size, 3])) as tf.Tensor4D;
          let top = runGraph(rest, tensors, mid);
          if (top.rank === 4) top = tf.mean(top, [1, 2]);
          return [tf.reshape(mid, [chunk.length, -1]), tf.reshape(top, [chunk.length, -1])];
        });
        const sv = (await s!.data()) as Float32Array;
        const pv = (await p!.data()) as Float32Array;
        tf.dispose([s!, p!]);
        for (let i = 0; i < chunk.length; i++) {
          spatial.push(sv.slice(i * tm.feature.dim, (i + 1) * tm.feature.dim));
          pooled.push(pv.slice(i * bm.feature.dim, (i + 1) * bm.feature.dim));
        }
      }
      return { pooled, spatial };
    },
    dispose() {
      for (const t of tensors.values()) t.dispose();
      tensors.clear();
    },
  };
}
