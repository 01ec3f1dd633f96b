import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { backboneIdSchema } from '../backbone/backbone-manifest.js';
import { sha256Hex } from '../backbone/backbone-package.js';
import { type HeadstartGraph, headstartGraphSchema, runGraph } from '../backbone/headstart-graph.js';
import { decodeWeights, encodeWeights, weightSpecSchema } from '../backbone/quantize.js';
import { VERSION_FILES, VERSION_FORMATS } from '../models/version-format.js';
import { InvalidTopError } from './finetune-errors.js';
import type { TopSnapshot } from './trainable-top.js';

/**
 * A fine-tuned top as stored in a model version: its descriptor (VERSION_FILES.topJson) beside its weights
 * (VERSION_FILES.topWeights); version-format.ts names both. It names the trunk it needs by backbone id; the trunk
 * is an ordinary stored backbone whose feature is the unpooled activation at `trunk.layer`.
 *
 * version-format.ts imports this module, so its names are read here only when a function runs (or lazily in the
 * schema), never while the module loads.
 */
const TOP_JSON = () => VERSION_FILES.topJson;
const TOP_WEIGHTS = () => VERSION_FILES.topWeights;

const CLASSIFIER_WEIGHTS = {
  w1: 'classifier/w1',
  b1: 'classifier/b1',
  w2: 'classifier/w2',
  b2: 'classifier/b2',
} as const;

export const topDescriptorSchema = z.object({
  schemaVersion: z.literal(1),
  format: z.lazy(() => z.literal(VERSION_FORMATS.finetune)),
  trunk: z.object({
    id: backboneIdSchema,
    /** Layer the trunk is cut at; its activation is what the feature cache holds. */
    layer: z.string().min(1),
    /** [height, width, channels] of one example's trunk activation (flattened NHWC on the wire). */
    shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  }),
  /** Layer the fine-tuned blocks end at, before pooling. */
  featureLayer: z.string().min(1),
  /** The fine-tuned blocks, reading the trunk's output as 'input', ending in a global or 2x2 grid average pool. */
  graph: headstartGraphSchema,
  /** Standardization is folded into the first dense layer, so the classifier takes the raw pooled feature. */
  classifier: z.discriminatedUnion('type', [
    z.object({ type: z.literal('softmax') }),
    z.object({ type: z.literal('mlp'), hidden: z.number().int().positive() }),
  ]),
  labels: z.array(z.string()).min(2),
  precision: z.enum(['float32', 'float16']),
  weightSpecs: z.array(weightSpecSchema),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  weightsBytes: z.number().int().nonnegative(),
  training: z.record(z.string(), z.unknown()).optional(),
});
export type TopDescriptor = z.infer<typeof topDescriptorSchema>;

export interface TopPackage {
  descriptor: TopDescriptor;
  weights: Uint8Array;
}

export interface SerializeTopOptions {
  trunkId: string;
  trunkCut: string;
  featureCut: string;
  inputShape: [number, number, number];
  labels: readonly string[];
  /** float16 halves the file; the weights are small either way. Default float32. */
  precision?: 'float32' | 'float16';
  training?: Record<string, unknown>;
}

export function serializeTop(snapshot: TopSnapshot, options: SerializeTopOptions): TopPackage {
  const { classifier } = snapshot;
  if (classifier.k !== options.labels.length) {
    throw new InvalidTopError(`classifier has ${classifier.k} outputs for ${options.labels.length} labels`);
  }
  const op = snapshot.pooling === 'grid2' ? 'grid_avg_pool' : 'global_avg_pool';
  const pool = `${options.featureCut}/${op}`;
  const graph: HeadstartGraph = {
    input: 'input',
    output: pool,
    nodes: [...snapshot.nodes, { op, name: pool, input: snapshot.output }],
  };
  const named = new Map(snapshot.weights);
  if (classifier.type === 'softmax') {
    named.set(CLASSIFIER_WEIGHTS.w1, { shape: [classifier.dim, classifier.k], values: classifier.w });
    named.set(CLASSIFIER_WEIGHTS.b1, { shape: [classifier.k], values: classifier.b });
  } else {
    named.set(CLASSIFIER_WEIGHTS.w1, { shape: [classifier.dim, classifier.hidden], values: classifier.w1 });
    named.set(CLASSIFIER_WEIGHTS.b1, { shape: [classifier.hidden], values: classifier.b1 });
    named.set(CLASSIFIER_WEIGHTS.w2, { shape: [classifier.hidden, classifier.k], values: classifier.w2 });
    named.set(CLASSIFIER_WEIGHTS.b2, { shape: [classifier.k], values: classifier.b2 });
  }
  const precision = options.precision ?? 'float32';
  const { specs, data } = encodeWeights(named, { mode: precision });
  const descriptor: TopDescriptor = {
    schemaVersion: 1,
    format: VERSION_FORMATS.finetune,
    trunk: { id: options.trunkId, layer: options.trunkCut, shape: options.inputShape },
    featureLayer: options.featureCut,
    graph,
    classifier:
      classifier.type === 'softmax' ? { type: 'softmax' } : { type: 'mlp', hidden: classifier.hidden },
    labels: [...options.labels],
    precision,
    weightSpecs: specs,
    weightsSha256: sha256Hex(data),
    weightsBytes: data.byteLength,
    ...(options.training ? { training: options.training } : {}),
  };
  return { descriptor: topDescriptorSchema.parse(descriptor), weights: data };
}

/** The two files of a top as they are written to the store. */
export function topFiles(pkg: TopPackage): { json: string; weights: Uint8Array } {
  return { json: JSON.stringify(pkg.descriptor), weights: pkg.weights };
}

/** Parses and checks a stored top; the weights must hash to the descriptor's sha256. */
export function parseTop(json: string | Uint8Array, weights: Uint8Array): TopPackage {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof json === 'string' ? json : new TextDecoder().decode(json));
  } catch (cause) {
    throw new InvalidTopError(`${TOP_JSON()} is not valid JSON`, { cause });
  }
  const parsed = topDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidTopError(`${TOP_JSON()} is invalid: ${issue?.path.join('.')}: ${issue?.message}`, {
      cause: parsed.error,
    });
  }
  const actual = sha256Hex(weights);
  if (actual !== parsed.data.weightsSha256) {
    throw new InvalidTopError(
      `${TOP_WEIGHTS()} has sha256 ${actual}, ${TOP_JSON()} says ${parsed.data.weightsSha256}`,
    );
  }
  return { descriptor: parsed.data, weights };
}

/**
 * A loaded fine-tuned top: trunk activations in, class probabilities out. `predict` has the same contract as a
 * head's (host features, n rows of `inputDim`), so the edge can run trunk.extract then top.predict exactly as it
 * runs backbone.extract then head.predict; `predictTensor` skips the host round trip of the activations.
 */
export interface FineTunedTop {
  readonly descriptor: TopDescriptor;
  readonly labels: readonly string[];
  /** Values per example: height * width * channels of the trunk's activation. */
  readonly inputDim: number;
  readonly trunkId: string;
  /** Width of the pooled feature the classifier takes (what an outlier detector of this top scores). */
  readonly pooledDim: number;
  predict(features: Float32Array, n: number): Float32Array;
  /** The pooled features [n, pooledDim] the classifier sees, for trunk activations [n, inputDim]. */
  pooled(features: Float32Array, n: number): Float32Array;
  /** Probabilities [n, labels] for trunk activations [n, inputDim] or [n, h, w, c]; the caller disposes both. */
  predictTensor(x: tf.Tensor): tf.Tensor2D;
  dispose(): void;
}

class LoadedTop implements FineTunedTop {
  readonly labels: readonly string[];
  readonly inputDim: number;
  readonly trunkId: string;

  constructor(
    readonly descriptor: TopDescriptor,
    private readonly tensors: Map<string, tf.Tensor>,
    private readonly maxBatch: number,
    readonly pooledDim: number,
  ) {
    this.labels = descriptor.labels;
    const [h, w, c] = descriptor.trunk.shape;
    this.inputDim = h * w * c;
    this.trunkId = descriptor.trunk.id;
  }

  private pooledTensor(x: tf.Tensor): tf.Tensor2D {
    const [h, w, c] = this.descriptor.trunk.shape;
    const n = x.shape[0]!;
    if (x.size !== n * this.inputDim) {
      throw new InvalidTopError(`expected [${n}, ${h}, ${w}, ${c}] trunk activations, got [${x.shape}]`);
    }
    return tf.tidy(() => {
      const x4 = x.rank === 4 ? (x as tf.Tensor4D) : (tf.reshape(x, [n, h, w, c]) as tf.Tensor4D);
      return runGraph(this.descriptor.graph, this.tensors, x4) as tf.Tensor2D;
    });
  }

  predictTensor(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const pooled = this.pooledTensor(x);
      const t = (name: string) => this.tensors.get(name)!;
      let logits = tf.add(
        tf.matMul(pooled, t(CLASSIFIER_WEIGHTS.w1) as tf.Tensor2D),
        t(CLASSIFIER_WEIGHTS.b1),
      );
      if (this.descriptor.classifier.type === 'mlp') {
        logits = tf.add(
          tf.matMul(tf.relu(logits) as tf.Tensor2D, t(CLASSIFIER_WEIGHTS.w2) as tf.Tensor2D),
          t(CLASSIFIER_WEIGHTS.b2),
        );
      }
      return tf.softmax(logits as tf.Tensor2D);
    });
  }

  pooled(features: Float32Array, n: number): Float32Array {
    return this.batched(features, n, this.pooledDim, (x) => this.pooledTensor(x));
  }

  predict(features: Float32Array, n: number): Float32Array {
    return this.batched(features, n, this.labels.length, (x) => this.predictTensor(x));
  }

  /** Runs `fn` over rows of trunk activations at most maxBatch at a time, `width` outputs per row. */
  private batched(
    features: Float32Array,
    n: number,
    width: number,
    fn: (x: tf.Tensor2D) => tf.Tensor2D,
  ): Float32Array {
    if (!Number.isInteger(n) || n < 0 || features.length !== n * this.inputDim) {
      throw new InvalidTopError(`expected ${n} x ${this.inputDim} features, got ${features.length} values`);
    }
    const out = new Float32Array(n * width);
    for (let start = 0; start < n; start += this.maxBatch) {
      const b = Math.min(this.maxBatch, n - start);
      const x = tf.tensor2d(features.subarray(start * this.inputDim, (start + b) * this.inputDim), [
        b,
        this.inputDim,
      ]);
      const y = fn(x);
      x.dispose();
      out.set(y.dataSync(), start * width);
      y.dispose();
    }
    return out;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/** Loads a parsed top into the current tfjs backend; `dispose()` frees its weights. */
export function loadTop(pkg: TopPackage, options: { maxBatch?: number } = {}): FineTunedTop {
  const { descriptor } = pkg;
  const weights = decodeWeights(descriptor.weightSpecs, pkg.weights);
  const needed: string[] = [CLASSIFIER_WEIGHTS.w1, CLASSIFIER_WEIGHTS.b1];
  if (descriptor.classifier.type === 'mlp') needed.push(CLASSIFIER_WEIGHTS.w2, CLASSIFIER_WEIGHTS.b2);
  for (const n of descriptor.graph.nodes) {
    if (n.op === 'conv2d' || n.op === 'depthwise_conv2d') needed.push(n.kernel, n.bias);
  }
  for (const name of needed) {
    if (!weights.has(name)) throw new InvalidTopError(`${TOP_WEIGHTS()} lacks weight '${name}'`);
  }
  const w1 = weights.get(CLASSIFIER_WEIGHTS.w1)!;
  const last = weights.get(
    descriptor.classifier.type === 'mlp' ? CLASSIFIER_WEIGHTS.w2 : CLASSIFIER_WEIGHTS.w1,
  )!;
  if (last.shape[1] !== descriptor.labels.length) {
    throw new InvalidTopError(
      `classifier has ${last.shape[1]} outputs for ${descriptor.labels.length} labels`,
    );
  }
  const byName = new Map(descriptor.graph.nodes.map((n) => [n.name, n]));
  const poolNode = byName.get(descriptor.graph.output);
  if (poolNode?.op !== 'global_avg_pool' && poolNode?.op !== 'grid_avg_pool') {
    throw new InvalidTopError('the top graph must end in a global or grid average pool');
  }
  // The pooled width is the channel count of the convolution that (through any adds) feeds the pool.
  let producer = byName.get(poolNode.input);
  while (producer?.op === 'add') producer = byName.get(producer.inputs[1]);
  const channels =
    producer && (producer.op === 'conv2d' || producer.op === 'depthwise_conv2d')
      ? weights.get(producer.bias)?.shape[0]
      : descriptor.trunk.shape[2];
  const pooledDim = channels === undefined ? undefined : channels * (poolNode.op === 'grid_avg_pool' ? 4 : 1);
  if (w1.shape[0] !== pooledDim) {
    throw new InvalidTopError(`classifier takes ${w1.shape[0]} features; the top pools ${pooledDim}`);
  }
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, w] of weights) tensors.set(name, tf.tensor(w.values, w.shape, 'float32'));
  // Equal to the pooled width, checked above.
  return new LoadedTop(descriptor, tensors, options.maxBatch ?? 32, w1.shape[0]!);
}
