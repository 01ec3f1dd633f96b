import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { exactArrayBuffer } from '../bytes.js';
import { InvalidBackboneError, UnsupportedGraphOpError } from './backbone-errors.js';
import { type Pooling, pooledDim } from './grid-pool.js';
import {
  appendPooling,
  type ConvNode,
  type GraphNode,
  type HeadstartGraph,
  type NamedWeights,
} from './headstart-graph.js';

const attrSchema = z
  .object({
    s: z.string().optional(),
    i: z.string().optional(),
    list: z.object({ s: z.array(z.string()).optional(), i: z.array(z.string()).optional() }).optional(),
  })
  .passthrough();
const nodeSchema = z.object({
  name: z.string(),
  op: z.string(),
  input: z.array(z.string()).default([]),
  attr: z.record(attrSchema).default({}),
});
export type TfGraphNode = z.infer<typeof nodeSchema>;

export interface GraphModelSource {
  /** model.json's modelTopology (its `node` list is what is read). */
  modelTopology: unknown;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weights: Uint8Array;
}

export interface FoldGraphOptions {
  /** Node whose output is the feature, named with or without `prefix`. */
  cut: string;
  pooling: Pooling;
  inputSize: number;
  /** Stripped from node names so the exported graph (and its cut) reads `expanded_conv_13/...`. */
  prefix?: string;
  /** What the caller feeds the placeholder: pixel * scale + offset. Affine ops at the input fold into it. */
  inputScale: number;
  inputOffset: number;
}

export interface FoldedGraph {
  graph: HeadstartGraph;
  weights: NamedWeights;
  featureDim: number;
  /** Pixel (0-255) preprocessing that, with the input's Mul/Sub folded in, feeds the first convolution. */
  scale: number;
  offset: number;
  /** The cut as named in the exported graph. */
  cut: string;
  /** [height, width, channels] of the cut's map, before pooling. */
  shape: [number, number, number];
}

const text = (b64: string | undefined) =>
  b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString();
const ints = (node: TfGraphNode, name: string, fallback: number[]) =>
  node.attr[name]?.list?.i?.map(Number) ?? fallback;

/** Weights dequantized by tfjs itself (tf.io.decodeWeights), so they match the source model bit for bit. */
export function decodeGraphWeights(source: GraphModelSource): NamedWeights {
  const tensors = tf.io.decodeWeights(exactArrayBuffer(source.weights), source.weightSpecs);
  const out: NamedWeights = new Map();
  for (const [name, t] of Object.entries(tensors)) {
    out.set(name, { shape: t.shape.slice(), values: Float32Array.from(t.dataSync()) });
    t.dispose();
  }
  return out;
}

interface Traced {
  ref: string;
  channels: number;
  /** Spatial size at this node, for 'none' pooling's dim. */
  size: [number, number];
}

/**
 * Converts a tfjs graph model (Placeholder, Const, Mul/Sub at the input, _FusedConv2D and
 * FusedDepthwiseConv2dNative with fused BiasAdd and optional Relu/Relu6, AddV2, Identity) into a HeadstartGraph
 * ending at `cut`. Only the nodes the cut depends on are read; any other op among them is refused by name.
 */
export function foldGraphModel(source: GraphModelSource, options: FoldGraphOptions): FoldedGraph {
  const nodes = z.array(nodeSchema).parse((source.modelTopology as { node?: unknown }).node ?? []);
  const prefix = options.prefix ?? '';
  const short = (name: string) => (name.startsWith(prefix) ? name.slice(prefix.length) : name);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const cutName = byName.has(options.cut) ? options.cut : prefix + options.cut;
  if (!byName.has(cutName)) throw new InvalidBackboneError(`node '${options.cut}' is not in the graph model`);
  const consts = decodeGraphWeights(source);
  const order = topoOrder(byName, cutName);
  const readers = new Map<string, number>();
  for (const n of order) {
    for (const i of n.input) readers.set(i.split(':')[0]!, (readers.get(i.split(':')[0]!) ?? 0) + 1);
  }

  const out: GraphNode[] = [];
  const weights: NamedWeights = new Map();
  const traced = new Map<string, Traced>();
  let scale = options.inputScale;
  let offset = options.inputOffset;
  let convSeen = false;
  const constOf = (name: string) => consts.get(name.split(':')[0]!);
  const dataInputs = (n: TfGraphNode) => n.input.filter((i) => !i.startsWith('^') && !constOf(i));
  const from = (n: TfGraphNode, i: string) => {
    const t = traced.get(i.split(':')[0]!);
    if (!t) throw new InvalidBackboneError(`graph node '${n.name}' reads '${i}', which could not be traced`);
    return t;
  };

  for (const n of order) {
    if (n.op === 'Const') continue;
    switch (n.op) {
      case 'Placeholder':
        traced.set(n.name, { ref: 'input', channels: 3, size: [options.inputSize, options.inputSize] });
        break;
      case 'Identity':
        traced.set(n.name, from(n, dataInputs(n)[0]!));
        break;
      case 'Mul':
      case 'Sub':
      case 'AddV2':
      case 'Add': {
        const data = dataInputs(n);
        if (data.length === 2 && n.op !== 'Mul' && n.op !== 'Sub') {
          const [a, b] = [from(n, data[0]!), from(n, data[1]!)];
          const node: GraphNode = {
            op: 'add',
            name: short(n.name),
            inputs: [a.ref, b.ref],
            activation: 'linear',
          };
          out.push(node);
          traced.set(n.name, { ...a, ref: node.name });
          break;
        }
        const input = data.length === 1 ? from(n, data[0]!) : undefined;
        const onlyReader = data.length === 1 && readers.get(data[0]!.split(':')[0]!) === 1;
        if (input?.ref !== 'input' || convSeen || !onlyReader) {
          throw new UnsupportedGraphOpError({
            op: n.op,
            node: n.name,
            detail: 'only a scalar affine map on the input itself, read by nothing else, is folded',
          });
        }
        [scale, offset] = foldAffine(n, n.input.map(constOf), { scale, offset });
        traced.set(n.name, input);
        break;
      }
      case '_FusedConv2D':
      case 'FusedDepthwiseConv2dNative': {
        const t = convNode(n, short(n.name), from(n, dataInputs(n)[0]!), constOf, weights);
        out.push(t.node);
        traced.set(n.name, t.traced);
        convSeen = true;
        break;
      }
      default:
        throw new UnsupportedGraphOpError({ op: n.op, node: n.name });
    }
  }
  const cut = traced.get(cutName)!;
  if (cut.ref === 'input')
    throw new InvalidBackboneError(`node '${options.cut}' is the input, not a feature`);
  const pooled = appendPooling(out, cut.ref, { cut: short(cutName), pooling: options.pooling });
  return {
    graph: { input: 'input', output: pooled.output, nodes: out },
    weights,
    featureDim: pooledDim([...cut.size, cut.channels], options.pooling),
    scale,
    offset,
    cut: short(cutName),
    shape: [cut.size[0], cut.size[1], cut.channels],
  };
}

/** Folds `x * k`, `x - k` or `x + k` (k a scalar constant) into the preprocessing that feeds x. */
function foldAffine(
  n: TfGraphNode,
  inputs: ({ values: Float32Array } | undefined)[],
  at: { scale: number; offset: number },
): [number, number] {
  const k = inputs.find((c) => c);
  if (k?.values.length !== 1) {
    throw new UnsupportedGraphOpError({ op: n.op, node: n.name, detail: 'the constant is not a scalar' });
  }
  if (n.op === 'Sub' && inputs[0]) {
    throw new UnsupportedGraphOpError({ op: n.op, node: n.name, detail: 'constant minus input' });
  }
  const v = k.values[0]!;
  if (n.op === 'Mul') return [at.scale * v, at.offset * v];
  return [at.scale, at.offset + (n.op === 'Sub' ? -v : v)];
}

/** The nodes `cut` depends on, inputs before readers. */
function topoOrder(byName: Map<string, TfGraphNode>, cut: string): TfGraphNode[] {
  const order: TfGraphNode[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: [string, boolean][] = [[cut, false]];
  while (stack.length) {
    const [name, expanded] = stack.pop()!;
    if (expanded) {
      state.set(name, 'done');
      order.push(byName.get(name)!);
      continue;
    }
    if (state.has(name)) continue;
    const node = byName.get(name);
    if (!node) throw new InvalidBackboneError(`graph node '${name}' is referenced but not defined`);
    state.set(name, 'open');
    stack.push([name, true]);
    for (const i of node.input) {
      const dep = i.replace(/^\^/, '').split(':')[0]!;
      if (!state.has(dep)) stack.push([dep, false]);
    }
  }
  return order;
}

function convNode(
  n: TfGraphNode,
  name: string,
  input: Traced,
  constOf: (name: string) => { shape: number[]; values: Float32Array } | undefined,
  weights: NamedWeights,
): { node: ConvNode; traced: Traced } {
  const refuse = (detail: string) => {
    throw new UnsupportedGraphOpError({ op: n.op, node: n.name, detail });
  };
  const fused = (n.attr.fused_ops?.list?.s ?? []).map((s) => text(s)!);
  const format = text(n.attr.data_format?.s) ?? 'NHWC';
  const padding = text(n.attr.padding?.s) ?? 'VALID';
  const strides = ints(n, 'strides', [1, 1, 1, 1]);
  const dilations = ints(n, 'dilations', [1, 1, 1, 1]);
  const kernel = constOf(n.input[1] ?? '');
  const bias = constOf(n.input[2] ?? '');
  if (format !== 'NHWC') refuse(`data_format ${format}`);
  if (padding !== 'SAME' && padding !== 'VALID') refuse(`padding ${padding}`);
  if (fused[0] !== 'BiasAdd' || fused.length > 2 || !bias) refuse(`fused_ops [${fused.join(', ')}]`);
  const act =
    fused[1] === undefined
      ? 'linear'
      : fused[1] === 'Relu'
        ? 'relu'
        : fused[1] === 'Relu6'
          ? 'relu6'
          : undefined;
  if (!act) refuse(`fused activation ${fused[1]}`);
  if (kernel?.shape.length !== 4) refuse('kernel is not a constant 4-D tensor');
  const depthwise = n.op === 'FusedDepthwiseConv2dNative';
  const [kh, kw, cin, mult] = kernel!.shape as [number, number, number, number];
  const channels = depthwise ? cin * mult : mult;
  if (cin !== input.channels) refuse(`kernel takes ${cin} channels, input has ${input.channels}`);
  const node: ConvNode = {
    op: depthwise ? 'depthwise_conv2d' : 'conv2d',
    name,
    input: input.ref,
    kernel: `${name}/kernel`,
    bias: `${name}/bias`,
    strides: [strides[1]!, strides[2]!],
    dilations: [dilations[1]!, dilations[2]!],
    pad: padding === 'SAME' ? 'same' : 'valid',
    activation: act!,
  };
  weights.set(node.kernel, kernel!);
  weights.set(node.bias, bias!);
  const spatial = (len: number, i: 0 | 1) => {
    const s = node.strides[i];
    const k = ((i === 0 ? kh : kw) - 1) * node.dilations[i] + 1;
    return padding === 'SAME' ? Math.ceil(len / s) : Math.floor((len - k) / s) + 1;
  };
  return {
    node,
    traced: { ref: name, channels, size: [spatial(input.size[0], 0), spatial(input.size[1], 1)] },
  };
}
