import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { exactArrayBuffer } from '../bytes.js';
import { foldStandardization, type Standardization } from './numerics.js';
import { InvalidHeadError } from './train-errors.js';

export type HeadType = 'softmax' | 'mlp';

/** Head weights in the standardized feature space the optimizer works in; kernels are row-major [in, out]. */
export type HeadParams =
  | { type: 'softmax'; dim: number; k: number; w: Float32Array; b: Float32Array }
  | {
      type: 'mlp';
      dim: number;
      k: number;
      hidden: number;
      w1: Float32Array;
      b1: Float32Array;
      w2: Float32Array;
      b2: Float32Array;
    };

/** A trained head as stored: a tfjs layers model.json and its weights, taking raw backbone features. */
export interface SerializedHead {
  /** tfjs model.json: `modelTopology` plus a `weightsManifest` naming one shard, `weights.bin`. */
  modelJson: Record<string, unknown>;
  weightData: Uint8Array;
  labels: string[];
  inputDim: number;
}

export interface Head {
  readonly labels: readonly string[];
  readonly inputDim: number;
  /** Probabilities for n feature rows (n * inputDim, row-major): n * labels.length values, row-major. */
  predict(features: Float32Array, n: number): Float32Array;
  dispose(): void;
}

function buildModel(params: HeadParams, standardization: Standardization): tfl.Sequential {
  const model = tfl.sequential();
  if (params.type === 'softmax') {
    const { kernel, bias } = foldStandardization(params.w, params.b, standardization);
    model.add(
      tfl.layers.dense({ units: params.k, activation: 'softmax', inputShape: [params.dim], name: 'probs' }),
    );
    setDense(model.layers[0]!, kernel, bias, params.dim, params.k);
  } else {
    const { kernel, bias } = foldStandardization(params.w1, params.b1, standardization);
    model.add(
      tfl.layers.dense({
        units: params.hidden,
        activation: 'relu',
        inputShape: [params.dim],
        name: 'hidden',
      }),
    );
    model.add(tfl.layers.dense({ units: params.k, activation: 'softmax', name: 'probs' }));
    setDense(model.layers[0]!, kernel, bias, params.dim, params.hidden);
    setDense(model.layers[1]!, params.w2, params.b2, params.hidden, params.k);
  }
  return model;
}

function setDense(
  layer: tfl.layers.Layer,
  kernel: Float32Array,
  bias: Float32Array,
  inDim: number,
  outDim: number,
) {
  const tensors = [tf.tensor2d(kernel, [inDim, outDim]), tf.tensor1d(bias)];
  layer.setWeights(tensors);
  tf.dispose(tensors);
}

/** Builds the exported tfjs model (standardization folded in) and serializes it. */
export async function serializeHead(
  params: HeadParams,
  standardization: Standardization,
  labels: readonly string[],
): Promise<SerializedHead> {
  const model = buildModel(params, standardization);
  try {
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
      }),
    );
    if (!saved?.weightData || !saved.weightSpecs) throw new InvalidHeadError('tfjs saved no weights');
    const weightData = new Uint8Array(tf.io.CompositeArrayBuffer.join(saved.weightData));
    return {
      modelJson: {
        format: saved.format ?? 'layers-model',
        generatedBy: saved.generatedBy,
        convertedBy: null,
        modelTopology: saved.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: saved.weightSpecs }],
      },
      weightData,
      labels: [...labels],
      inputDim: params.dim,
    };
  } finally {
    model.dispose();
  }
}

const modelJsonSchema = z.object({
  modelTopology: z.record(z.unknown()),
  weightsManifest: z
    .array(
      z.object({
        paths: z.array(z.string()),
        weights: z.array(z.object({ name: z.string() }).passthrough()),
      }),
    )
    .length(1),
});

const serializedHeadSchema = z.object({
  modelJson: modelJsonSchema,
  weightData: z.instanceof(Uint8Array),
  labels: z.array(z.string()).min(2),
  inputDim: z.number().int().positive(),
});

class LoadedHead implements Head {
  constructor(
    private readonly model: tfl.LayersModel,
    readonly labels: readonly string[],
    readonly inputDim: number,
  ) {}

  predict(features: Float32Array, n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0 || features.length !== n * this.inputDim) {
      throw new InvalidHeadError(`expected ${n} x ${this.inputDim} features, got ${features.length} values`);
    }
    if (n === 0) return new Float32Array(0);
    const out = tf.tidy(() => this.model.predict(tf.tensor2d(features, [n, this.inputDim])) as tf.Tensor);
    try {
      return new Float32Array(out.dataSync());
    } finally {
      out.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Loads a serialized head for prediction; call `dispose()` when done to free its weights. */
export async function loadHead(head: SerializedHead): Promise<Head> {
  const parsed = serializedHeadSchema.safeParse(head);
  if (!parsed.success)
    throw new InvalidHeadError(parsed.error.issues[0]?.message ?? 'malformed', { cause: parsed.error });
  const { modelJson, weightData, labels, inputDim } = parsed.data;
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest[0]!.weights as unknown as tf.io.WeightsManifestEntry[],
        weightData: exactArrayBuffer(weightData),
      }),
    );
  } catch (err) {
    throw new InvalidHeadError(`tfjs could not load the model: ${(err as Error).message}`, { cause: err });
  }
  const inShape = model.inputs[0]?.shape;
  const outShape = model.outputs[0]?.shape;
  if (inShape?.[1] !== inputDim || outShape?.[1] !== labels.length) {
    model.dispose();
    throw new InvalidHeadError(
      `model maps ${inShape?.[1]} features to ${outShape?.[1]} outputs; expected ${inputDim} to ${labels.length}`,
    );
  }
  return new LoadedHead(model, labels, inputDim);
}
