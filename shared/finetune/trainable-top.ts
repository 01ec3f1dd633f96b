import * as tf from '@tensorflow/tfjs-core';
import { poolFeatures } from '../backbone/grid-pool.js';
import type { GraphNode, NamedWeights } from '../backbone/headstart-graph.js';
import { UnsupportedTopError } from './finetune-errors.js';
import type { TopPooling, TopSegment } from './top-segment.js';
import { type Activation, depthwiseConv, pointwiseConv } from './trainable-ops.js';

/**
 * A classifier in the standardized space of the pooled feature (kernels row-major [in, out]): a head like head
 * training's, so it shares its types and its standardization.
 */
export type { HeadParams as ClassifierParams } from '../train/head-model.js';
export type { Standardization } from '../train/numerics.js';

import type { HeadParams as ClassifierParams } from '../train/head-model.js';
import { foldStandardization, type Standardization } from '../train/numerics.js';

export interface TrainableTopInit {
  segment: TopSegment;
  /** Frozen per-feature affine map applied to the pooled feature before the classifier. */
  standardization: Standardization;
  classifier: ClassifierParams;
  /** Dropout on the MLP's hidden layer while training. */
  dropout?: number;
}

/** Everything needed to serialize a trained top: graph weights in graph layout, classifier with standardization folded in. */
export interface TopSnapshot {
  nodes: GraphNode[];
  output: string;
  weights: NamedWeights;
  classifier: ClassifierParams;
  pooling: TopPooling;
}

/**
 * The top block(s) above the trunk plus pooling and a classifier, as tf.Variables, with a forward pass made only
 * of ops the wasm backend can differentiate. Pretrained weights and classifier weights are kept apart so the
 * optimizer can give them different learning rates.
 */
export interface TrainableTop {
  readonly pretrained: tf.Variable[];
  readonly classifier: tf.Variable[];
  readonly featureDim: number;
  readonly labels: number;
  /** Logits for a batch of trunk activations [n, h, w, c]. `training` turns dropout on. */
  logits(x: tf.Tensor4D, training: boolean, seed?: number): tf.Tensor2D;
  /** Output of the top's last node, pooled as the segment's backbone pools (global or 2x2 grid). */
  pooled(x: tf.Tensor4D): tf.Tensor2D;
  /** The l2 penalty's input: the sum of squares of the classifier's kernels. */
  classifierKernelNorm(): tf.Scalar;
  snapshot(): TopSnapshot;
  /** Host copies of every variable, to restore the best epoch later. */
  saveState(): Float32Array[];
  restoreState(state: readonly Float32Array[]): void;
  dispose(): void;
}

/** A trainable variable holding `t`'s values; `t` itself is released (the variable keeps its own reference). */
function variableOf(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

interface OpPlan {
  node: GraphNode;
  kernel?: tf.Variable;
  bias?: tf.Variable;
}

class Top implements TrainableTop {
  readonly pretrained: tf.Variable[] = [];
  readonly classifier: tf.Variable[] = [];
  readonly featureDim: number;
  readonly labels: number;
  private readonly plan: OpPlan[] = [];
  private readonly mean: tf.Tensor1D;
  private readonly invStd: tf.Tensor1D;
  private readonly head: { w1: tf.Variable; b1: tf.Variable; w2?: tf.Variable; b2?: tf.Variable };
  private readonly kind: ClassifierParams;
  private readonly dropout: number;

  constructor(private readonly init: TrainableTopInit) {
    const { segment, classifier, standardization } = init;
    this.featureDim = segment.featureDim;
    this.labels = classifier.k;
    this.kind = classifier;
    this.dropout = init.dropout ?? 0;
    if (classifier.dim !== segment.featureDim || standardization.mean.length !== segment.featureDim) {
      throw new UnsupportedTopError(
        `classifier takes ${classifier.dim} features and standardization ${standardization.mean.length}; the top pools ${segment.featureDim}`,
      );
    }
    for (const node of segment.nodes) {
      if (node.op === 'add') {
        this.plan.push({ node });
        continue;
      }
      if (node.op === 'global_avg_pool' || node.op === 'grid_avg_pool') {
        throw new UnsupportedTopError('pooling inside the top');
      }
      const k = segment.weights.get(node.kernel);
      const b = segment.weights.get(node.bias);
      if (!k || !b) throw new UnsupportedTopError(`node '${node.name}' has no weights`);
      if (node.dilations[0] !== 1 || node.dilations[1] !== 1) {
        throw new UnsupportedTopError(`node '${node.name}': dilated convolutions are not trainable here`);
      }
      let shape: number[];
      if (node.op === 'conv2d') {
        const [kh, kw, cin, cout] = k.shape as [number, number, number, number];
        if (kh !== 1 || kw !== 1 || node.strides[0] !== 1 || node.strides[1] !== 1) {
          throw new UnsupportedTopError(
            `node '${node.name}': only 1x1 stride-1 convolutions are trainable (got ${kh}x${kw} stride ${node.strides})`,
          );
        }
        shape = [cin, cout];
      } else {
        if (k.shape[3] !== 1) {
          throw new UnsupportedTopError(`node '${node.name}': depth multiplier ${k.shape[3]} is unsupported`);
        }
        shape = k.shape;
      }
      const kernel = variableOf(tf.tensor(k.values, shape, 'float32'));
      const bias = variableOf(tf.tensor1d(b.values));
      this.pretrained.push(kernel, bias);
      this.plan.push({ node, kernel, bias });
    }
    this.mean = tf.tensor1d(standardization.mean);
    this.invStd = tf.tensor1d(Float32Array.from(standardization.std, (s) => 1 / s));
    if (classifier.type === 'softmax') {
      this.head = {
        w1: variableOf(tf.tensor2d(classifier.w, [classifier.dim, classifier.k])),
        b1: variableOf(tf.tensor1d(classifier.b)),
      };
    } else {
      this.head = {
        w1: variableOf(tf.tensor2d(classifier.w1, [classifier.dim, classifier.hidden])),
        b1: variableOf(tf.tensor1d(classifier.b1)),
        w2: variableOf(tf.tensor2d(classifier.w2, [classifier.hidden, classifier.k])),
        b2: variableOf(tf.tensor1d(classifier.b2)),
      };
    }
    this.classifier.push(
      ...[this.head.w1, this.head.b1, this.head.w2, this.head.b2].filter((v): v is tf.Variable => !!v),
    );
  }

  private spatial(x: tf.Tensor4D): tf.Tensor4D {
    const values = new Map<string, tf.Tensor4D>([['input', x]]);
    const read = (name: string) => {
      const t = values.get(name);
      if (!t) throw new UnsupportedTopError(`top node input '${name}' is undefined`);
      return t;
    };
    for (const { node, kernel, bias } of this.plan) {
      let out: tf.Tensor4D;
      if (node.op === 'add') {
        const sum = tf.add(read(node.inputs[0]), read(node.inputs[1])) as tf.Tensor4D;
        out = node.activation === 'relu' ? tf.relu(sum) : node.activation === 'relu6' ? tf.relu6(sum) : sum;
      } else if (node.op === 'conv2d') {
        out = pointwiseConv(read(node.input), kernel as tf.Tensor2D, bias as tf.Tensor1D, node.activation, {
          inputGrad: node.input !== 'input',
        });
      } else if (node.op === 'depthwise_conv2d') {
        out = depthwiseConv(
          read(node.input),
          kernel as tf.Tensor4D,
          bias as tf.Tensor1D,
          node.activation as Activation,
          { strides: node.strides, pad: node.pad },
          { inputGrad: node.input !== 'input' },
        );
      } else {
        throw new UnsupportedTopError(`op '${node.op}' in the top`);
      }
      values.set(node.name, out);
    }
    return read(this.init.segment.output);
  }

  pooled(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => poolFeatures(this.spatial(x), this.init.segment.pooling) as tf.Tensor2D);
  }

  logits(x: tf.Tensor4D, training: boolean, seed?: number): tf.Tensor2D {
    return tf.tidy(() => {
      const z = tf.mul(tf.sub(this.pooled(x), this.mean), this.invStd) as tf.Tensor2D;
      const first = tf.add(tf.matMul(z, this.head.w1 as tf.Tensor2D), this.head.b1) as tf.Tensor2D;
      if (this.kind.type === 'softmax') return first;
      let h: tf.Tensor2D = tf.relu(first);
      if (training && this.dropout > 0) h = tf.dropout(h, this.dropout, undefined, seed) as tf.Tensor2D;
      return tf.add(tf.matMul(h, this.head.w2 as tf.Tensor2D), this.head.b2!) as tf.Tensor2D;
    });
  }

  classifierKernelNorm(): tf.Scalar {
    return tf.tidy(() => {
      let s = tf.sum(tf.square(this.head.w1));
      if (this.head.w2) s = tf.add(s, tf.sum(tf.square(this.head.w2)));
      return s as tf.Scalar;
    });
  }

  snapshot(): TopSnapshot {
    const weights: NamedWeights = new Map();
    const original = this.init.segment.weights;
    for (const { node, kernel, bias } of this.plan) {
      if (!('kernel' in node) || !kernel || !bias) continue;
      weights.set(node.kernel, {
        shape: original.get(node.kernel)!.shape.slice(),
        values: new Float32Array(kernel.dataSync()),
      });
      weights.set(node.bias, { shape: [bias.shape[0]!], values: new Float32Array(bias.dataSync()) });
    }
    const read = (v: tf.Variable | undefined) => new Float32Array(v!.dataSync());
    // Fold (x - mean) / std into the first dense layer so the stored classifier takes raw pooled features.
    const dim = this.featureDim;
    const { kernel: fw, bias: fb } = foldStandardization(
      read(this.head.w1),
      read(this.head.b1),
      this.init.standardization,
    );
    const classifier: ClassifierParams =
      this.kind.type === 'softmax'
        ? { type: 'softmax', dim, k: this.labels, w: fw, b: fb }
        : {
            type: 'mlp',
            dim,
            k: this.labels,
            hidden: this.kind.hidden,
            w1: fw,
            b1: fb,
            w2: read(this.head.w2),
            b2: read(this.head.b2),
          };
    return {
      nodes: this.init.segment.nodes.map((n) => ({ ...n })),
      output: this.init.segment.output,
      weights,
      classifier,
      pooling: this.init.segment.pooling,
    };
  }

  saveState(): Float32Array[] {
    return [...this.pretrained, ...this.classifier].map((v) => new Float32Array(v.dataSync()));
  }

  restoreState(state: readonly Float32Array[]): void {
    [...this.pretrained, ...this.classifier].forEach((v, i) => {
      const t = tf.tensor(state[i]!, v.shape, 'float32');
      v.assign(t);
      t.dispose();
    });
  }

  dispose(): void {
    tf.dispose([...this.pretrained, ...this.classifier, this.mean, this.invStd]);
  }
}

export function createTrainableTop(init: TrainableTopInit): TrainableTop {
  return new Top(init);
}
