import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { InvalidBackboneError } from './backbone-errors.js';
import { gridAvgPool2, type Pooling, pooledDim } from './grid-pool.js';

/**
 * Headstart's own inference graph: the Keras model reduced to the ops a convolutional backbone needs, with
 * batch normalization folded into the preceding convolution and activations fused, so that each conv block is
 * a single fused kernel call (as graph-model and TFLite exports do). Only the layers up to the cut survive.
 */
const activation = z.enum(['linear', 'relu', 'relu6']);
const padding = z.union([
  z.enum(['same', 'valid']),
  z.tuple([z.tuple([z.number().int(), z.number().int()]), z.tuple([z.number().int(), z.number().int()])]),
]);
const pair = z.tuple([z.number().int().positive(), z.number().int().positive()]);
const convNode = z.object({
  op: z.enum(['conv2d', 'depthwise_conv2d']),
  name: z.string(),
  input: z.string(),
  kernel: z.string(),
  bias: z.string(),
  strides: pair,
  dilations: pair,
  pad: padding,
  activation,
});
const graphNode = z.discriminatedUnion('op', [
  convNode.extend({ op: z.literal('conv2d') }),
  convNode.extend({ op: z.literal('depthwise_conv2d') }),
  z.object({ op: z.literal('add'), name: z.string(), inputs: z.tuple([z.string(), z.string()]), activation }),
  z.object({ op: z.literal('global_avg_pool'), name: z.string(), input: z.string() }),
  /** 2x2 grid of averages, cells row-major: see gridAvgPool2. */
  z.object({ op: z.literal('grid_avg_pool'), name: z.string(), input: z.string() }),
]);
export const headstartGraphSchema = z.object({
  input: z.literal('input'),
  output: z.string(),
  nodes: z.array(graphNode).min(1),
});
export type HeadstartGraph = z.infer<typeof headstartGraphSchema>;
export type GraphNode = z.infer<typeof graphNode>;
export type ConvNode = Extract<GraphNode, { op: 'conv2d' | 'depthwise_conv2d' }>;

export interface NamedWeight {
  shape: number[];
  values: Float32Array;
}
export type NamedWeights = Map<string, NamedWeight>;

export interface FoldOptions {
  /** Layer whose output is the feature. */
  cut: string;
  /** How a spatial cut becomes one vector per image (see Pooling). */
  pooling: Pooling;
}

interface Pending {
  ref: string;
  pad?: [[number, number], [number, number]];
}

function inboundNames(layer: tfl.layers.Layer): string[] {
  const node = layer.inboundNodes[0];
  return node ? node.inboundLayers.map((l) => l.name) : [];
}

function weightBySuffix(layer: tfl.layers.Layer, suffix: string): NamedWeight | undefined {
  const v = layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`) || w.name.endsWith(`/${suffix}`));
  if (!v) return undefined;
  const t = v.read();
  return { shape: t.shape.slice(), values: t.dataSync() as Float32Array };
}

function pairOf(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback), Number(v[1] ?? v[0] ?? fallback)];
  if (typeof v === 'number') return [v, v];
  return [fallback, fallback];
}

/**
 * Reduces a Keras-style layers model (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, ZeroPadding2D, Add,
 * pooling, Flatten, Dropout) to a HeadstartGraph ending at `cut`, with float32 weights. Anything else above the
 * cut is dropped; anything else below it is refused by name, so an unsupported backbone fails at export time.
 */
export function foldLayersModel(
  model: tfl.LayersModel,
  options: FoldOptions,
): {
  graph: HeadstartGraph;
  weights: NamedWeights;
  featureDim: number;
} {
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const cutLayer = byName.get(options.cut);
  if (!cutLayer) {
    throw new InvalidBackboneError(`layer '${options.cut}' is not in the model`);
  }
  const needed = new Set<string>();
  const stack = [options.cut];
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    const layer = byName.get(n);
    if (layer) stack.push(...inboundNames(layer));
  }
  const consumers = new Map<string, number>();
  for (const name of needed) {
    for (const src of inboundNames(byName.get(name)!)) consumers.set(src, (consumers.get(src) ?? 0) + 1);
  }

  const nodes: GraphNode[] = [];
  const nodeByName = new Map<string, GraphNode>();
  const weights: NamedWeights = new Map();
  const alias = new Map<string, Pending>();
  const spatialShape = new Map<string, number[]>();
  const push = (node: GraphNode) => {
    nodes.push(node);
    nodeByName.set(node.name, node);
  };
  const src = (layer: tfl.layers.Layer, i = 0): Pending => {
    const name = inboundNames(layer)[i];
    const p = name ? alias.get(name) : undefined;
    if (!p) throw new InvalidBackboneError(`layer '${layer.name}' has an input Headstart could not trace`);
    return p;
  };
  /** Fusing into the producer is only safe when nothing else reads the producer's unfused output. */
  const fusable = (producerLayer: string, ref: string) =>
    (consumers.get(producerLayer) ?? 0) === 1 && producerLayer !== options.cut && nodeByName.has(ref);

  for (const layer of model.layers) {
    if (!needed.has(layer.name)) continue;
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, unknown>;
    switch (cls) {
      case 'InputLayer':
        alias.set(layer.name, { ref: 'input' });
        break;
      case 'ZeroPadding2D': {
        const p = cfg.padding as number[][] | number;
        const pad: [[number, number], [number, number]] =
          typeof p === 'number'
            ? [
                [p, p],
                [p, p],
              ]
            : [pairOf(p[0], 0), pairOf(p[1], 0)];
        alias.set(layer.name, { ...src(layer), pad });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const input = src(layer);
        const kernel = weightBySuffix(layer, cls === 'Conv2D' ? 'kernel' : 'depthwise_kernel');
        if (!kernel) throw new InvalidBackboneError(`layer '${layer.name}' has no kernel`);
        const outChannels = kernel.shape.slice(cls === 'Conv2D' ? 3 : 2).reduce((a, b) => a * b, 1);
        const bias = weightBySuffix(layer, 'bias') ?? {
          shape: [outChannels],
          values: new Float32Array(outChannels),
        };
        let pad: ConvNode['pad'] = cfg.padding === 'same' ? 'same' : 'valid';
        if (input.pad) {
          if (pad !== 'valid') {
            throw new InvalidBackboneError(`layer '${layer.name}': explicit padding before 'same' padding`);
          }
          pad = input.pad;
        }
        const act = cfg.activation === 'relu' ? 'relu' : cfg.activation === 'linear' ? 'linear' : undefined;
        if (!act)
          throw new InvalidBackboneError(`layer '${layer.name}': activation '${cfg.activation}' unsupported`);
        const node: ConvNode = {
          op: cls === 'Conv2D' ? 'conv2d' : 'depthwise_conv2d',
          name: layer.name,
          input: input.ref,
          kernel: `${layer.name}/kernel`,
          bias: `${layer.name}/bias`,
          strides: pairOf(cfg.strides, 1),
          dilations: pairOf(cfg.dilationRate, 1),
          pad,
          activation: act,
        };
        weights.set(node.kernel, kernel);
        weights.set(node.bias, bias);
        push(node);
        alias.set(layer.name, { ref: node.name });
        break;
      }
      case 'BatchNormalization': {
        const input = src(layer);
        const producer = inboundNames(layer)[0]!;
        const conv = nodeByName.get(input.ref);
        if (
          !conv ||
          (conv.op !== 'conv2d' && conv.op !== 'depthwise_conv2d') ||
          conv.activation !== 'linear'
        ) {
          throw new InvalidBackboneError(
            `layer '${layer.name}': batch normalization must follow a linear convolution`,
          );
        }
        if (!fusable(producer, input.ref)) {
          throw new InvalidBackboneError(
            `layer '${layer.name}': the convolution's raw output is used elsewhere`,
          );
        }
        foldBatchNorm(layer, cfg, conv, weights);
        alias.set(layer.name, { ref: conv.name });
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const input = src(layer);
        const producer = inboundNames(layer)[0]!;
        let act: 'relu' | 'relu6';
        if (cls === 'ReLU') {
          const max = cfg.maxValue as number | null | undefined;
          if ((cfg.negativeSlope as number | undefined) || (cfg.threshold as number | undefined)) {
            throw new InvalidBackboneError(`layer '${layer.name}': leaky or thresholded ReLU is unsupported`);
          }
          if (max == null) act = 'relu';
          else if (max === 6) act = 'relu6';
          else throw new InvalidBackboneError(`layer '${layer.name}': ReLU max_value ${max} is unsupported`);
        } else if (cfg.activation === 'relu' || cfg.activation === 'relu6') {
          act = cfg.activation;
        } else {
          throw new InvalidBackboneError(
            `layer '${layer.name}': activation '${cfg.activation}' is unsupported`,
          );
        }
        const target = nodeByName.get(input.ref);
        if (
          !target ||
          !('activation' in target) ||
          target.activation !== 'linear' ||
          !fusable(producer, input.ref)
        ) {
          throw new InvalidBackboneError(
            `layer '${layer.name}': activation must directly follow a convolution or add`,
          );
        }
        target.activation = act;
        alias.set(layer.name, { ref: target.name });
        break;
      }
      case 'Add': {
        const names = inboundNames(layer);
        if (names.length !== 2)
          throw new InvalidBackboneError(`layer '${layer.name}': only two-input Add is supported`);
        const node: GraphNode = {
          op: 'add',
          name: layer.name,
          inputs: [src(layer, 0).ref, src(layer, 1).ref],
          activation: 'linear',
        };
        push(node);
        alias.set(layer.name, { ref: node.name });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'AveragePooling2D': {
        const input = src(layer);
        const inShape = (layer.inboundNodes[0]?.inboundLayers[0]?.outputShape as number[]) ?? [];
        if (cls === 'AveragePooling2D') {
          const pool = pairOf(cfg.poolSize, 1);
          if (pool[0] !== inShape[1] || pool[1] !== inShape[2]) {
            throw new InvalidBackboneError(
              `layer '${layer.name}': only pooling over the whole feature map is supported`,
            );
          }
        }
        const node: GraphNode = { op: 'global_avg_pool', name: layer.name, input: input.ref };
        push(node);
        alias.set(layer.name, { ref: node.name });
        spatialShape.set(layer.name, [inShape[3] ?? 0]);
        break;
      }
      case 'Flatten':
      case 'Dropout': {
        const input = src(layer);
        const producerNode = nodeByName.get(input.ref);
        if (cls === 'Flatten' && producerNode?.op !== 'global_avg_pool') {
          throw new InvalidBackboneError(
            `layer '${layer.name}': Flatten is only supported after global pooling`,
          );
        }
        alias.set(layer.name, input);
        break;
      }
      default:
        throw new InvalidBackboneError(`layer '${layer.name}' of type ${cls} is not supported below the cut`);
    }
  }

  const out = alias.get(options.cut)!;
  let output = out.ref;
  const cutShape = cutLayer.outputShape as number[];
  let featureDim = cutShape[cutShape.length - 1] ?? 0;
  if (cutShape.length === 4) {
    const pooled = appendPooling(nodes, output, options);
    output = pooled.output;
    featureDim = pooledDim(cutShape.slice(1) as number[], options.pooling);
  }
  return { graph: { input: 'input', output, nodes }, weights, featureDim };
}

/** Ends a graph whose output is a spatial map with the pooling node `pooling` asks for ('none': none). */
export function appendPooling(nodes: GraphNode[], output: string, options: FoldOptions): { output: string } {
  if (options.pooling === 'none') return { output };
  const node: GraphNode =
    options.pooling === 'avg'
      ? { op: 'global_avg_pool', name: `${options.cut}/global_avg_pool`, input: output }
      : { op: 'grid_avg_pool', name: `${options.cut}/grid_avg_pool`, input: output };
  nodes.push(node);
  return { output: node.name };
}

function foldBatchNorm(
  layer: tfl.layers.Layer,
  cfg: Record<string, unknown>,
  conv: ConvNode,
  weights: NamedWeights,
): void {
  const mean = weightBySuffix(layer, 'moving_mean');
  const variance = weightBySuffix(layer, 'moving_variance');
  if (!mean || !variance) throw new InvalidBackboneError(`layer '${layer.name}' lacks moving statistics`);
  const c = mean.values.length;
  const gamma = cfg.scale === false ? undefined : weightBySuffix(layer, 'gamma');
  const beta = cfg.center === false ? undefined : weightBySuffix(layer, 'beta');
  const eps = (cfg.epsilon as number | undefined) ?? 1e-3;
  const kernel = weights.get(conv.kernel)!;
  const bias = weights.get(conv.bias)!;
  if (bias.values.length !== c) {
    throw new InvalidBackboneError(
      `layer '${layer.name}': ${c} channels after a convolution with ${bias.values.length}`,
    );
  }
  const s = new Float32Array(c);
  for (let i = 0; i < c; i++) s[i] = (gamma ? gamma.values[i]! : 1) / Math.sqrt(variance.values[i]! + eps);
  // Kernels are laid out with the output channel innermost (conv: [h,w,in,out]; depthwise: [h,w,in,mult], whose
  // output channel is in*mult+m), so the flat index modulo c is the output channel in both cases.
  const k = new Float32Array(kernel.values.length);
  for (let i = 0; i < k.length; i++) k[i] = kernel.values[i]! * s[i % c]!;
  const b = new Float32Array(c);
  for (let i = 0; i < c; i++)
    b[i] = (bias.values[i]! - mean.values[i]!) * s[i]! + (beta ? beta.values[i]! : 0);
  weights.set(conv.kernel, { shape: kernel.shape, values: k });
  weights.set(conv.bias, { shape: [c], values: b });
}

/** Runs a graph on an NHWC float input. Intermediate tensors are freed as soon as their last reader is done. */
export function runGraph(
  graph: HeadstartGraph,
  tensors: Map<string, tf.Tensor>,
  input: tf.Tensor4D,
): tf.Tensor {
  const remaining = new Map<string, number>();
  for (const n of graph.nodes) {
    for (const i of n.op === 'add' ? n.inputs : [n.input]) remaining.set(i, (remaining.get(i) ?? 0) + 1);
  }
  const values = new Map<string, tf.Tensor>([['input', input]]);
  const read = (name: string): tf.Tensor => {
    const t = values.get(name);
    if (!t) throw new InvalidBackboneError(`graph node input '${name}' is undefined`);
    return t;
  };
  const release = (name: string) => {
    const left = (remaining.get(name) ?? 0) - 1;
    remaining.set(name, left);
    if (left <= 0 && name !== 'input' && name !== graph.output) {
      values.get(name)?.dispose();
      values.delete(name);
    }
  };
  for (const n of graph.nodes) {
    let out: tf.Tensor;
    switch (n.op) {
      case 'conv2d':
      case 'depthwise_conv2d': {
        const x = read(n.input) as tf.Tensor4D;
        const filter = tensors.get(n.kernel) as tf.Tensor4D;
        const bias = tensors.get(n.bias);
        const pad = typeof n.pad === 'string' ? n.pad : [[0, 0], n.pad[0], n.pad[1], [0, 0]];
        const args = {
          x,
          filter,
          strides: n.strides,
          pad: pad as 'same',
          dilations: n.dilations,
          bias,
          activation: n.activation,
        };
        out = n.op === 'conv2d' ? tf.fused.conv2d(args) : tf.fused.depthwiseConv2d(args);
        release(n.input);
        break;
      }
      case 'add': {
        const sum = tf.add(read(n.inputs[0]), read(n.inputs[1]));
        if (n.activation === 'linear') out = sum;
        else {
          out = n.activation === 'relu' ? tf.relu(sum) : tf.relu6(sum);
          sum.dispose();
        }
        release(n.inputs[0]);
        release(n.inputs[1]);
        break;
      }
      case 'global_avg_pool':
        out = tf.mean(read(n.input), [1, 2]);
        release(n.input);
        break;
      case 'grid_avg_pool':
        out = gridAvgPool2(read(n.input) as tf.Tensor4D);
        release(n.input);
        break;
    }
    values.set(n.name, out);
  }
  return read(graph.output);
}
