import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { exactArrayBuffer } from '../bytes.js';
import { BackboneInputError, InvalidBackboneError } from './backbone-errors.js';
import type { BackboneManifest } from './backbone-manifest.js';
import type { BackbonePackage } from './backbone-package.js';
import { poolFeatures } from './grid-pool.js';
import { runGraph } from './headstart-graph.js';
import { decodeWeights } from './quantize.js';

/** A loaded backbone, cut at its feature layer: image pixels in, one feature vector per image out. */
export interface Backbone {
  readonly manifest: BackboneManifest;
  readonly inputSize: number;
  readonly featureDim: number;
  /**
   * Images are RGB, HWC, uint8, exactly inputSize x inputSize (as produced by decodeImage). Runs the backbone
   * in batches of at most `maxBatch` and returns one Float32Array of featureDim per image, in order.
   */
  extract(images: readonly Uint8Array[]): Promise<Float32Array[]>;
  /** The same on a preprocessed NHWC float batch; the caller owns (and disposes) the input and the result. */
  extractTensor(batch: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

export interface LoadBackboneOptions {
  /** Run one image through at load so the first request does not pay for kernel set-up. Default true. */
  warmup?: boolean;
  /** Largest batch per forward pass; bounds peak memory. Default 16. */
  maxBatch?: number;
}

type Forward = (x: tf.Tensor4D) => tf.Tensor;

async function buildForward(pkg: BackbonePackage): Promise<{ forward: Forward; release: () => void }> {
  const { manifest } = pkg;
  switch (manifest.format) {
    case 'headstart-graph': {
      const graph = pkg.graph!;
      const weights = decodeWeights(pkg.weightSpecs!, pkg.weights);
      const tensors = new Map<string, tf.Tensor>();
      for (const [name, w] of weights) tensors.set(name, tf.tensor(w.values, w.shape, 'float32'));
      for (const n of graph.nodes) {
        const names = n.op === 'conv2d' || n.op === 'depthwise_conv2d' ? [n.kernel, n.bias] : [];
        for (const w of names) {
          if (!tensors.has(w))
            throw new InvalidBackboneError(`node '${n.name}' needs weight '${w}', which is missing`);
        }
      }
      return {
        forward: (x) => runGraph(graph, tensors, x),
        release: () => {
          for (const t of tensors.values()) t.dispose();
        },
      };
    }
    case 'tfjs-layers': {
      const model = await tfl.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: pkg.tfjs!.modelTopology as tf.io.ModelArtifacts['modelTopology'],
          weightSpecs: pkg.tfjs!.weightSpecs as tf.io.WeightsManifestEntry[],
          weightData: exactArrayBuffer(pkg.weights),
        }),
      );
      let layer: tfl.layers.Layer;
      try {
        layer = model.getLayer(manifest.feature.layer);
      } catch (cause) {
        model.dispose();
        throw new InvalidBackboneError(`layer '${manifest.feature.layer}' is not in the model`, { cause });
      }
      // "Remove the output layer, keep the rest intact": a new model over the same layers, ending at the cut.
      const cut = tfl.model({ inputs: model.inputs, outputs: layer.output as tfl.SymbolicTensor });
      return { forward: (x) => cut.predict(x) as tf.Tensor, release: () => model.dispose() };
    }
    case 'tfjs-graph': {
      const converter = await import('@tensorflow/tfjs-converter');
      const model = await converter.loadGraphModel(
        tf.io.fromMemory({
          modelTopology: pkg.tfjs!.modelTopology as tf.io.ModelArtifacts['modelTopology'],
          weightSpecs: pkg.tfjs!.weightSpecs as tf.io.WeightsManifestEntry[],
          weightData: exactArrayBuffer(pkg.weights),
        }),
      );
      const node = manifest.feature.layer;
      return {
        forward: (x) => model.execute(x, node) as tf.Tensor,
        release: () => model.dispose(),
      };
    }
  }
}

class LoadedBackbone implements Backbone {
  readonly inputSize: number;
  readonly featureDim: number;
  private readonly scale: number;
  private readonly offset: number;

  constructor(
    readonly manifest: BackboneManifest,
    private readonly forward: Forward,
    private readonly release: () => void,
    private readonly maxBatch: number,
  ) {
    this.inputSize = manifest.inputSize;
    this.featureDim = manifest.feature.dim;
    this.scale = manifest.preprocessing.scale;
    this.offset = manifest.preprocessing.offset;
  }

  extractTensor(batch: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const y = poolFeatures(this.forward(batch), this.manifest.feature.pooling);
      return tf.reshape(y, [batch.shape[0], -1]) as tf.Tensor2D;
    });
  }

  async extract(images: readonly Uint8Array[]): Promise<Float32Array[]> {
    const px = this.inputSize * this.inputSize * 3;
    images.forEach((img, i) => {
      if (img.length !== px) {
        throw new BackboneInputError(
          `image ${i} has ${img.length} values; backbone '${this.manifest.id}' takes ${this.inputSize}x${this.inputSize}x3`,
        );
      }
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < images.length; start += this.maxBatch) {
      const chunk = images.slice(start, start + this.maxBatch);
      // Normalizing in JS while packing the batch avoids an int32 tensor and two more kernel launches.
      const buf = new Float32Array(chunk.length * px);
      chunk.forEach((img, i) => {
        const base = i * px;
        for (let j = 0; j < px; j++) buf[base + j] = img[j]! * this.scale + this.offset;
      });
      const x = tf.tensor4d(buf, [chunk.length, this.inputSize, this.inputSize, 3]);
      const y = this.extractTensor(x);
      x.dispose();
      const flat = (await y.data()) as Float32Array;
      y.dispose();
      const dim = flat.length / chunk.length;
      if (dim !== this.featureDim) {
        throw new InvalidBackboneError(
          `backbone '${this.manifest.id}' produced ${dim} features, manifest says ${this.featureDim}`,
        );
      }
      for (let i = 0; i < chunk.length; i++) out.push(flat.slice(i * dim, (i + 1) * dim));
    }
    return out;
  }

  dispose(): void {
    this.release();
  }
}

/**
 * Wraps an in-memory layers model, cut at the manifest's feature layer, without packaging it. Used to compare an
 * export against its source; the caller keeps ownership of `model`.
 */
export function backboneFromLayersModel(model: tfl.LayersModel, manifest: BackboneManifest): Backbone {
  const cut = tfl.model({
    inputs: model.inputs,
    outputs: model.getLayer(manifest.feature.layer).output as tfl.SymbolicTensor,
  });
  return new LoadedBackbone(
    manifest,
    (x) => cut.predict(x) as tf.Tensor,
    () => {},
    16,
  );
}

/** Loads a stored backbone into the current tfjs backend (call initTf first). */
export async function loadBackbone(
  pkg: BackbonePackage,
  options: LoadBackboneOptions = {},
): Promise<Backbone> {
  const { forward, release } = await buildForward(pkg);
  const backbone = new LoadedBackbone(pkg.manifest, forward, release, options.maxBatch ?? 16);
  if (options.warmup ?? true) {
    const size = pkg.manifest.inputSize;
    await backbone.extract([new Uint8Array(size * size * 3)]);
  }
  return backbone;
}
