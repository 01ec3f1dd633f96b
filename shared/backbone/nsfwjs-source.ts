import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { exactArrayBuffer } from '../bytes.js';
import type { BackboneManifest } from './backbone-manifest.js';
import { type BackbonePackage, sha256Hex } from './backbone-package.js';
import type { Pooling } from './grid-pool.js';

/** The models that the npm package nsfwjs (pinned at 4.3.0) ships as data. */
export type NsfwjsModelName = 'mobilenet_v2' | 'mobilenet_v2_mid';

export const NSFWJS_VERSION = '4.3.0';

/** nsfwjs feeds its models RGB scaled to [0, 1] (its core divides by 255 and subtracts nothing). */
export const NSFWJS_PREPROCESSING = { resize: 'center-crop', scale: 1 / 255, offset: 0 } as const;

export function nsfwjsModelDir(name: NsfwjsModelName = 'mobilenet_v2'): string {
  const require = createRequire(import.meta.url);
  // The package's exports map hides dist/, so find the package root through its main entry.
  const main = require.resolve('nsfwjs');
  return join(main.slice(0, main.lastIndexOf('/dist/')), 'dist', 'models', name);
}

const modelModule = z.object({
  format: z.string().optional(),
  modelTopology: z.record(z.unknown()),
  weightsManifest: z
    .array(z.object({ paths: z.array(z.string()), weights: z.array(z.record(z.unknown())) }))
    .length(1),
});

export interface NsfwjsModelFiles {
  format: 'layers-model' | 'graph-model';
  modelTopology: Record<string, unknown>;
  weightSpecs: tf.io.WeightsManifestEntry[];
  /** The weight shards concatenated, exactly as shipped (uint8-quantized). */
  weights: Uint8Array;
}

/**
 * Reads a model's files as data. They are UMD `.min.js` modules: model.min.js exports the model.json object,
 * each shard module exports its bytes as a base64 string; nothing in them is code we run.
 */
export function readNsfwjsModel(name: NsfwjsModelName = 'mobilenet_v2'): NsfwjsModelFiles {
  const dir = nsfwjsModelDir(name);
  const require = createRequire(import.meta.url);
  const parsed = modelModule.parse(require(join(dir, 'model.min.js')));
  const manifest = parsed.weightsManifest[0]!;
  const shards = manifest.paths.map(
    (p) => new Uint8Array(Buffer.from(z.string().parse(require(join(dir, `${p}.min.js`))), 'base64')),
  );
  const weights = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
  let at = 0;
  for (const s of shards) {
    weights.set(s, at);
    at += s.byteLength;
  }
  return {
    format: parsed.format === 'graph-model' ? 'graph-model' : 'layers-model',
    modelTopology: parsed.modelTopology,
    weightSpecs: manifest.weights as unknown as tf.io.WeightsManifestEntry[],
    weights,
  };
}

/** Loads nsfwjs' MobileNetV2 layers model in full (with its own 5-class classifier on top). */
export async function loadNsfwjsMobileNetV2(): Promise<{ model: tfl.LayersModel; weightsSha256: string }> {
  const files = readNsfwjsModel('mobilenet_v2');
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: files.modelTopology,
      weightSpecs: files.weightSpecs,
      weightData: exactArrayBuffer(files.weights),
    }),
  );
  return { model, weightsSha256: sha256Hex(files.weights) };
}

/**
 * The unexported source models as backbone packages: the layers model cut at a named layer, or the graph model
 * (MobileNetV2 1.4, batch norms already folded) executed to a named node. Both run as they ship, for comparison.
 */
export function nsfwjsSourcePackage(
  name: NsfwjsModelName,
  feature: { layer: string; pooling: Pooling; dim: number },
  options: { inputSize?: number } = {},
): BackbonePackage {
  const files = readNsfwjsModel(name);
  const inputSize = options.inputSize ?? 224;
  const topology =
    inputSize !== 224 && files.format === 'graph-model'
      ? freePlaceholderSize(files.modelTopology)
      : files.modelTopology;
  const manifest: BackboneManifest = {
    schemaVersion: 1,
    id: `nsfwjs-${name.replace(/_/g, '-')}-source`,
    description: `nsfwjs@${NSFWJS_VERSION} ${name}, as shipped`,
    format: files.format === 'graph-model' ? 'tfjs-graph' : 'tfjs-layers',
    inputSize,
    preprocessing: { ...NSFWJS_PREPROCESSING },
    feature,
    quantization: 'uint8-per-tensor',
    weightsSha256: sha256Hex(files.weights),
    weightsBytes: files.weights.byteLength,
  };
  return {
    manifest,
    tfjs: { modelTopology: topology, weightSpecs: files.weightSpecs },
    weights: files.weights,
  };
}

/**
 * The graph model's placeholder pins 224x224 and tfjs checks it; its convolutions take any size, so the source
 * can run (for fidelity) at the size an export is built for. A copy: the parsed model module is shared.
 */
function freePlaceholderSize(shipped: Record<string, unknown>): Record<string, unknown> {
  const topology = structuredClone(shipped);
  const nodes = z
    .array(z.object({ op: z.string(), attr: z.record(z.any()).optional() }).passthrough())
    .parse(topology.node);
  for (const n of nodes) {
    const dim = n.op === 'Placeholder' ? n.attr?.shape?.shape?.dim : undefined;
    if (Array.isArray(dim) && dim.length === 4) {
      for (const i of [1, 2]) dim[i] = { size: '-1' };
    }
  }
  return topology;
}
