import type * as tfl from '@tensorflow/tfjs-layers';
import { foldGraphModel, type GraphModelSource } from '../backbone/graph-model-fold.js';
import { type Pooling, pooledDim } from '../backbone/grid-pool.js';
import {
  foldLayersModel,
  type GraphNode,
  type HeadstartGraph,
  type NamedWeights,
} from '../backbone/headstart-graph.js';
import { UnsupportedTopError } from './finetune-errors.js';

/** How a top pools its last map: as the head-only backbone it extends pools its feature. */
export type TopPooling = Exclude<Pooling, 'none'>;

/**
 * The part of a folded backbone between two cuts: what fine-tuning retrains. Its nodes read the trunk's output
 * as 'input'; its weights are the pretrained float32 weights with batch normalization folded in (inference-mode
 * statistics, frozen, as the Keras fine-tuning guide prescribes).
 */
export interface TopSegment {
  /** Layer whose (spatial, unpooled) output the frozen trunk produces and the feature cache holds. */
  trunkCut: string;
  /** Layer whose output the top ends at, before global average pooling. */
  featureCut: string;
  /** [height, width, channels] of the trunk's output. */
  inputShape: [number, number, number];
  nodes: GraphNode[];
  weights: NamedWeights;
  /** Output node of `nodes`. */
  output: string;
  /** The pooled feature's length: channels at `featureCut`, times the grid's cells. */
  featureDim: number;
  pooling: TopPooling;
}

export interface TopCuts {
  trunkCut: string;
  featureCut: string;
  /** Default 'avg'. */
  pooling?: TopPooling;
}

/** A model folded to one cut, unpooled: what two folds of the same model are compared on. */
interface UnpooledFold {
  graph: HeadstartGraph;
  weights: NamedWeights;
  shape: number[];
}

function spatialShape(model: tfl.LayersModel, layer: string): number[] {
  try {
    return (model.getLayer(layer).outputShape as number[]).slice(1);
  } catch (cause) {
    throw new UnsupportedTopError(`layer '${layer}' is not in the model`, { cause });
  }
}

/**
 * Folds a Keras `model` twice, to the trunk cut and to the feature cut (both unpooled), and keeps the nodes the
 * second graph adds (see segmentBetween).
 */
export function foldTopSegment(model: tfl.LayersModel, cuts: TopCuts): TopSegment {
  const fold = (cut: string): UnpooledFold => ({
    ...foldLayersModel(model, { cut, pooling: 'none' }),
    shape: spatialShape(model, cut),
  });
  return segmentBetween(fold(cuts.trunkCut), fold(cuts.featureCut), cuts);
}

/** The same as foldTopSegment for a tfjs graph model (foldGraphModel's conversion, node names without prefix). */
export function foldGraphTopSegment(
  source: GraphModelSource,
  options: TopCuts & { inputSize: number; prefix?: string; inputScale: number; inputOffset: number },
): TopSegment {
  const fold = (cut: string): UnpooledFold => {
    const { graph, weights, shape } = foldGraphModel(source, { ...options, cut, pooling: 'none' });
    return { graph, weights, shape };
  };
  return segmentBetween(fold(options.trunkCut), fold(options.featureCut), options);
}

/**
 * The nodes `full` adds to `trunk`. Refused when a node above the cut reads anything below it other than the cut
 * itself (a skip connection across the cut would need activations the cache does not hold), or when the two folds
 * disagree about a shared node (the cut sat between a convolution and the activation fused into it).
 */
function segmentBetween(trunk: UnpooledFold, full: UnpooledFold, cuts: TopCuts): TopSegment {
  const inShape = trunk.shape;
  const outShape = full.shape;
  if (inShape.length !== 3 || outShape.length !== 3) {
    throw new UnsupportedTopError(
      `both cuts must be spatial (h, w, c); '${cuts.trunkCut}' is [${inShape}], '${cuts.featureCut}' is [${outShape}]`,
    );
  }
  const fullByName = new Map(full.graph.nodes.map((n) => [n.name, n]));
  for (const node of trunk.graph.nodes) {
    const same = fullByName.get(node.name);
    if (!same || JSON.stringify(same) !== JSON.stringify(node)) {
      throw new UnsupportedTopError(
        `'${cuts.trunkCut}' does not cut '${cuts.featureCut}' cleanly: node '${node.name}' differs between the two folds`,
      );
    }
  }
  const below = new Set(trunk.graph.nodes.map((n) => n.name));
  const cutRef = trunk.graph.output;
  const rename = (ref: string, reader: string): string => {
    if (ref === cutRef) return 'input';
    if (below.has(ref) || ref === 'input') {
      throw new UnsupportedTopError(
        `node '${reader}' above the cut reads '${ref}' below it; only '${cuts.trunkCut}' is cached`,
      );
    }
    return ref;
  };
  const nodes: GraphNode[] = [];
  const weights: NamedWeights = new Map();
  for (const node of full.graph.nodes) {
    if (below.has(node.name)) continue;
    switch (node.op) {
      case 'conv2d':
      case 'depthwise_conv2d':
        nodes.push({ ...node, input: rename(node.input, node.name) });
        for (const w of [node.kernel, node.bias]) weights.set(w, full.weights.get(w)!);
        break;
      case 'add':
        nodes.push({
          ...node,
          inputs: [rename(node.inputs[0], node.name), rename(node.inputs[1], node.name)],
        });
        break;
      case 'global_avg_pool':
      case 'grid_avg_pool':
        throw new UnsupportedTopError(`'${cuts.featureCut}' is above the backbone's own pooling`);
    }
  }
  if (nodes.length === 0) {
    throw new UnsupportedTopError(`'${cuts.featureCut}' is not above '${cuts.trunkCut}'`);
  }
  const pooling = cuts.pooling ?? 'avg';
  return {
    trunkCut: cuts.trunkCut,
    featureCut: cuts.featureCut,
    inputShape: inShape as [number, number, number],
    nodes,
    weights,
    output: full.graph.output === cutRef ? 'input' : full.graph.output,
    featureDim: pooledDim(outShape, pooling),
    pooling,
  };
}
